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
busybox (Debian's busybox-static), and for the demo coxswain/redis:latest (a host redis
binary with its shared libraries) and coxswain/guestbook:latest; it writes them as OCI
archives into --out, the folder the kubelet imports with --image-airgap-dir, and with
--push also pushes them to a registry.`,
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
	fs.StringVar(&o.RedisBinary, "redis-binary", o.RedisBinary, "host redis-server binary for coxswain/redis:latest, packed with the shared libraries it links and busybox (empty: skip)")
	fs.StringVar(&o.GuestbookBinary, "guestbook-binary", o.GuestbookBinary, "static guestbook frontend binary for coxswain/guestbook:latest (empty: skip)")
	fs.StringVar(&o.Push, "push", o.Push, "registry host:port to push every image to over plain HTTP, e.g. 127.0.0.1:5000 (empty: archives only)")
	return cmd
}
