package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/bankbook/bankbook/api"
)

// version prints the API version this binary speaks, and the commit and Go
// version it was built from when the build recorded them.
func version(stdout io.Writer) error {
	fmt.Fprintf(stdout, "bankbook %s\n", api.Version)
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
		if rev != "" {
			fmt.Fprintf(stdout, "commit %s%s\n", rev, modified)
		}
		fmt.Fprintf(stdout, "built with %s\n", info.GoVersion)
	}
	return nil
}
