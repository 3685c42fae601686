// Package plugins lists the in-tree plugins by name.
package plugins

import (
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeaffinity"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodename"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeports"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/noderesources"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeunschedulable"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/tainttoleration"
)

// Registry maps a plugin name to its factory.
type Registry map[string]framework.PluginFactory

// NewInTreeRegistry returns every plugin Coxswain ships.
func NewInTreeRegistry() Registry {
	return Registry{
		nodeunschedulable.Name:               nodeunschedulable.New,
		nodename.Name:                        nodename.New,
		tainttoleration.Name:                 tainttoleration.New,
		nodeaffinity.Name:                    nodeaffinity.New,
		nodeports.Name:                       nodeports.New,
		noderesources.FitName:                noderesources.NewFit,
		noderesources.BalancedAllocationName: noderesources.NewBalancedAllocation,
	}
}
