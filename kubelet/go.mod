module github.com/coxswain/coxswain/kubelet

go 1.26.8

replace github.com/coxswain/coxswain/pkg => ../pkg

replace github.com/coxswain/coxswain/proto => ../proto
