package soak

import (
	"context"
	"fmt"

	"github.com/bankbook/bankbook/internal/engineproc"
)

// Build compiles the bankbook command (./cmd/bankbook of the module that
// holds the working directory) to out, with the race detector when race is
// set (engineproc.Build).
func Build(ctx context.Context, out string, race bool) error {
	if err := engineproc.Build(ctx, out, race); err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	return nil
}
