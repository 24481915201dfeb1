package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one reading of an engine's /metrics, by metric family name.
type scrape map[string]*dto.MetricFamily

// metrics scrapes the engine's /metrics.
func (h *harness) metrics(ctx context.Context) (scrape, error) {
	var b strings.Builder
	if err := get(ctx, fmt.Sprintf("http://%s/metrics", h.eng.HTTPAddr()), 10*time.Second, &b); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return parseScrape(b.String())
}

// parseScrape reads a Prometheus text exposition.
func parseScrape(text string) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return fams, nil
}

// metric returns the series of family name whose labels include labels;
// nil if there is none.
func (s scrape) metric(name string, labels map[string]string) *dto.Metric {
	for _, m := range s[name].GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
			return false
		}
	}
	return true
}
