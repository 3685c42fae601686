// Package plugins lists the in-tree plugins by name.
package plugins

import (
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/imagelocality"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/interpodaffinity"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeaffinity"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodename"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeports"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/noderesources"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeunschedulable"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/podtopologyspread"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/tainttoleration"
)

// Registry maps a plugin name to its factory.
type Registry map[string]framework.PluginFactory

// NewInTreeRegistry returns every plugin Coxswain ships.
func NewInTreeRegistry() Registry {
	return Registry{
		nodeunschedulable.Name:               framework.WithoutHandle(nodeunschedulable.New),
		nodename.Name:                        framework.WithoutHandle(nodename.New),
		tainttoleration.Name:                 framework.WithoutHandle(tainttoleration.New),
		nodeaffinity.Name:                    framework.WithoutHandle(nodeaffinity.New),
		nodeports.Name:                       framework.WithoutHandle(nodeports.New),
		noderesources.FitName:                framework.WithoutHandle(noderesources.NewFit),
		noderesources.BalancedAllocationName: framework.WithoutHandle(noderesources.NewBalancedAllocation),
		interpodaffinity.Name:                interpodaffinity.New,
		podtopologyspread.Name:               podtopologyspread.New,
		imagelocality.Name:                   imagelocality.New,
	}
}
