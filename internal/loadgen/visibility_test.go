package loadgen

import "testing"

// TestBatchesBetween reads the runner's batch histogram from two scrapes and
// places the median and the 99th percentile in the buckets that gained them.
func TestBatchesBetween(t *testing.T) {
	exposition := func(b1, b5, b25, inf, sum, commits string) string {
		return `# HELP bankbook_projection_batch_seconds Time ...
# TYPE bankbook_projection_batch_seconds histogram
bankbook_projection_batch_seconds_bucket{le="0.001"} ` + b1 + `
bankbook_projection_batch_seconds_bucket{le="0.005"} ` + b5 + `
bankbook_projection_batch_seconds_bucket{le="0.025"} ` + b25 + `
bankbook_projection_batch_seconds_bucket{le="+Inf"} ` + inf + `
bankbook_projection_batch_seconds_sum ` + sum + `
bankbook_projection_batch_seconds_count ` + inf + `
# TYPE bankbook_projection_batch_commits_total counter
bankbook_projection_batch_commits_total ` + commits + `
`
	}
	// 100 batches before; then 200 more: 120 under 1 ms, 78 under 5 ms, 2 under 25 ms.
	parse := func(text string) scrape {
		t.Helper()
		s, err := parseScrape(text)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := parse(exposition("50", "90", "100", "100", "0.2", "150"))
	after := parse(exposition("170", "288", "300", "300", "0.6", "550"))
	got := batchesBetween(before, after)
	if got == nil {
		t.Fatal("no batches read")
	}
	want := Batches{Count: 200, Commits: 400, MeanUs: 2000, P50leUs: 1000, P99leUs: 5000}
	if *got != want {
		t.Fatalf("got %+v, want %+v", *got, want)
	}
	if batchesBetween(parse("go_goroutines 12\n"), after) != nil {
		t.Fatal("batches read from a scrape without the histogram")
	}
}
