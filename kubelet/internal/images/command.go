package images

import (
	"fmt"

	"github.com/spf13/cobra"
)

// NewCommand returns the coxswain-images command.
func NewCommand() *cobra.Command {
	o := Options{OutDir: "_output/images", BusyboxBinary: "/bin/busybox"}
	cmd := &cobra.Command{
		Use:   "coxswain-images",
		Short: "Build Coxswain's OCI images from static binaries into OCI archives",
		Long: `coxswain-images builds coxswain/pause:latest from a static pause binary
(kubelet/cmd/pause, built with CGO_ENABLED=0) and coxswain/busybox:latest from a static
busybox (Debian's busybox-static), and writes them as OCI archives into --out, the folder
the kubelet imports with --image-airgap-dir.`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths, err := Build(o)
			if err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.OutDir, "out", o.OutDir, "folder to write the OCI archives into")
	fs.StringVar(&o.PauseBinary, "pause-binary", o.PauseBinary, "static pause binary for coxswain/pause:latest (empty: skip)")
	fs.StringVar(&o.BusyboxBinary, "busybox-binary", o.BusyboxBinary, "static busybox for coxswain/busybox:latest (empty: skip)")
	return cmd
}
