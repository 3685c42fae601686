// Package kubelet is the kubelet component of Coxswain. Its issue is not done yet;
// the module exists so the workspace holds every component of DESIGN.md.
package kubelet
