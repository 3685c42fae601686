package stats

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// The types below are the JSON shape of upstream's kubelet summary API
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1), which metrics-server and other
// consumers of /stats/summary decode. Fields Coxswain does not fill are
// left out; the names and JSON tags of the others are upstream's.

// Summary is a top-level container for holding NodeStats and PodStats.
type Summary struct {
	// Node is the overall resource stats of the node.
	Node NodeStats `json:"node"`
	// Pods is the per-pod stats.
	Pods []PodStats `json:"pods"`
}

// NodeStats holds node-level unprocessed sample stats.
type NodeStats struct {
	NodeName  string        `json:"nodeName"`
	StartTime metav1.Time   `json:"startTime"`
	CPU       *CPUStats     `json:"cpu,omitempty"`
	Memory    *MemoryStats  `json:"memory,omitempty"`
	Network   *NetworkStats `json:"network,omitempty"`
	Fs        *FsStats      `json:"fs,omitempty"`
	Runtime   *RuntimeStats `json:"runtime,omitempty"`
	Rlimit    *RlimitStats  `json:"rlimit,omitempty"`
}

// RlimitStats are stats of the node's process limits.
type RlimitStats struct {
	Time metav1.Time `json:"time"`
	// MaxPID is the kernel's pid_max.
	MaxPID *int64 `json:"maxpid,omitempty"`
	// NumOfRunningProcesses is the number of processes on the node.
	NumOfRunningProcesses *int64 `json:"curproc,omitempty"`
}

// RuntimeStats are stats of the container runtime.
type RuntimeStats struct {
	// ImageFs is the filesystem of the runtime's images.
	ImageFs *FsStats `json:"imageFs,omitempty"`
	// ContainerFs is the filesystem of the containers' writable layers.
	ContainerFs *FsStats `json:"containerFs,omitempty"`
}

// PodStats holds pod-level unprocessed sample stats.
type PodStats struct {
	PodRef           PodReference     `json:"podRef"`
	StartTime        metav1.Time      `json:"startTime"`
	Containers       []ContainerStats `json:"containers"`
	CPU              *CPUStats        `json:"cpu,omitempty"`
	Memory           *MemoryStats     `json:"memory,omitempty"`
	Network          *NetworkStats    `json:"network,omitempty"`
	VolumeStats      []VolumeStats    `json:"volume,omitempty"`
	EphemeralStorage *FsStats         `json:"ephemeral-storage,omitempty"`
	ProcessStats     *ProcessStats    `json:"process_stats,omitempty"`
}

// ProcessStats are the stats of a pod's processes.
type ProcessStats struct {
	ProcessCount *uint64 `json:"process_count,omitempty"`
}

// ContainerStats holds container-level unprocessed sample stats.
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
	// Rootfs is the container's writable layer.
	Rootfs *FsStats `json:"rootfs,omitempty"`
	// Logs is the container's log files.
	Logs *FsStats `json:"logs,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// InterfaceStats are the stats of one network interface.
type InterfaceStats struct {
	Name     string  `json:"name"`
	RxBytes  *uint64 `json:"rxBytes,omitempty"`
	RxErrors *uint64 `json:"rxErrors,omitempty"`
	TxBytes  *uint64 `json:"txBytes,omitempty"`
	TxErrors *uint64 `json:"txErrors,omitempty"`
}

// NetworkStats are the network stats of a network namespace: the default
// interface's inline, and every interface's in Interfaces.
type NetworkStats struct {
	Time           metav1.Time `json:"time"`
	InterfaceStats `json:",inline"`
	Interfaces     []InterfaceStats `json:"interfaces,omitempty"`
}

// CPUStats are CPU usage stats.
type CPUStats struct {
	Time metav1.Time `json:"time"`
	// UsageNanoCores is the CPU usage over the last sample window, in
	// billionths of a core.
	UsageNanoCores *uint64 `json:"usageNanoCores,omitempty"`
	// UsageCoreNanoSeconds is the cumulative CPU usage since start.
	UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats are memory usage stats.
type MemoryStats struct {
	Time metav1.Time `json:"time"`
	// AvailableBytes is the memory left before the limit (or the node's
	// capacity): limit - workingSetBytes.
	AvailableBytes *uint64 `json:"availableBytes,omitempty"`
	// UsageBytes is all memory in use, page cache included.
	UsageBytes *uint64 `json:"usageBytes,omitempty"`
	// WorkingSetBytes is usage less the inactive file cache: what the
	// OOM killer and eviction look at.
	WorkingSetBytes *uint64 `json:"workingSetBytes,omitempty"`
	// RSSBytes is anonymous memory and swap cache.
	RSSBytes        *uint64 `json:"rssBytes,omitempty"`
	PageFaults      *uint64 `json:"pageFaults,omitempty"`
	MajorPageFaults *uint64 `json:"majorPageFaults,omitempty"`
}

// VolumeStats are the stats of one of a pod's volumes.
type VolumeStats struct {
	FsStats `json:",inline"`
	Name    string `json:"name,omitempty"`
}

// FsStats are filesystem usage stats.
type FsStats struct {
	Time           metav1.Time `json:"time"`
	AvailableBytes *uint64     `json:"availableBytes,omitempty"`
	CapacityBytes  *uint64     `json:"capacityBytes,omitempty"`
	UsedBytes      *uint64     `json:"usedBytes,omitempty"`
	InodesFree     *uint64     `json:"inodesFree,omitempty"`
	Inodes         *uint64     `json:"inodes,omitempty"`
	InodesUsed     *uint64     `json:"inodesUsed,omitempty"`
}
