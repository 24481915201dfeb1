// Package logsample keeps log lines that any client can cause, as many
// times as it likes, from filling the disk.
package logsample

import (
	"time"

	"github.com/rs/zerolog"
)

// Flood returns log sampled for lines a flood can repeat: the first 20 of
// each second are kept, then one in a thousand. Each call returns a logger
// with its own sampler, so one flood does not silence another kind of line.
func Flood(log zerolog.Logger) zerolog.Logger {
	return log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second, NextSampler: &zerolog.BasicSampler{N: 1000}})
}
