package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"24h":                  now.Add(-24 * time.Hour),
		"-90m":                 now.Add(-90 * time.Minute),
		"7d":                   now.Add(-7 * 24 * time.Hour), // as lookup --since 7d
		"1d12h":                now.Add(-36 * time.Hour),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		"2026-11-20T08:00:00Z": time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWhen("yesterday", now); err == nil {
		t.Error("parseWhen(yesterday) accepted")
	}
}

func TestTrendAndSpark(t *testing.T) {
	cases := map[string]string{
		trend(30, 1000, 10, 1000): "↑ ×3.0",
		trend(10, 1000, 30, 1000): "↓ ×0.33",
		trend(10, 1000, 11, 1000): "≈ ×0.91",
		trend(5, 1000, 0, 1000):   "new",
		trend(5, 1000, 0, 0):      "-",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("trend = %q, want %q", got, want)
		}
	}
	from := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	s := spark(map[int64]uint64{from.Unix(): 1, from.Add(2 * time.Hour).Unix(): 8}, from, from.Add(3*time.Hour))
	if got := []rune(s); len(got) != 3 || got[0] != '▁' || got[1] != ' ' || got[2] != '█' {
		t.Errorf("spark = %q", s)
	}
	if strings.TrimSpace(spark(nil, from, from.Add(time.Hour))) != "" {
		t.Error("spark of no hits is not blank")
	}
}
