package digest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

const (
	// DefaultSpec is the default digest schedule: Mondays at 08:00.
	DefaultSpec = "0 8 * * 1"

	// firstLookback is the first window that Previous searches for a run
	// before a time. It doubles up to maxLookback, so a weekly spec takes a
	// few cron evaluations.
	firstLookback = time.Hour
	// maxLookback is the longest gap between two runs that Previous finds,
	// enough for a yearly spec such as "0 8 1 1 *" in a leap year.
	maxLookback = 367 * 24 * time.Hour
	// maxRunsScanned bounds the runs that Previous steps through in one
	// window, which an every-minute spec reaches in its first window.
	maxRunsScanned = 10_000
)

// ErrNoRun is returned when a schedule has no run in the searched range,
// for example "0 8 30 2 *" (February 30).
var ErrNoRun = errors.New("schedule has no run")

// Schedule is a cron spec evaluated in a time zone. Runs fall on the
// zone's wall clock, so "0 8 * * 1" runs at 08:00 local time on both sides
// of a daylight saving change.
type Schedule struct {
	spec     string
	cron     cron.Schedule
	location *time.Location
}

// ParseSchedule parses a standard five-field cron spec or a descriptor
// such as "@weekly", evaluated in the IANA time zone named by zone ("UTC"
// when empty). The zone comes from zone alone, so a spec with a TZ= or
// CRON_TZ= prefix is rejected, and so is "@every", which has no fixed
// times to post at.
func ParseSchedule(spec, zone string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("parse digest schedule %q: set the time zone with its own setting, not a TZ= prefix", spec)
	}
	if strings.HasPrefix(spec, "@every") {
		return nil, fmt.Errorf("parse digest schedule %q: @every has no fixed run times; use a cron spec such as %q", spec, DefaultSpec)
	}
	if zone == "" {
		zone = "UTC"
	}

	location, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("parse digest time zone %q: %w", zone, err)
	}
	parsed, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("parse digest schedule %q: %w", spec, err)
	}
	return &Schedule{spec: spec, cron: parsed, location: location}, nil
}

// String returns the cron spec as configured.
func (s *Schedule) String() string {
	return s.spec
}

// Location returns the time zone that runs are computed in.
func (s *Schedule) Location() *time.Location {
	return s.location
}

// Next returns the first run strictly after t, in the schedule's zone, or
// the zero time when there is none within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	return s.cron.Next(t.In(s.location))
}

// Previous returns the latest run at or before t, in the schedule's zone.
// It returns ErrNoRun when no run falls within maxLookback before t.
func (s *Schedule) Previous(t time.Time) (time.Time, error) {
	t = t.In(s.location)
	for window := firstLookback; ; window = min(2*window, maxLookback) {
		// cron's Next works at whole seconds and returns a time strictly
		// after its argument, so the search starts one second early.
		run := s.Next(t.Add(-window).Add(-time.Second))
		if run.IsZero() || run.After(t) {
			if window == maxLookback {
				break
			}
			continue
		}
		for range maxRunsScanned {
			next := s.Next(run)
			if next.IsZero() || next.After(t) {
				return run, nil
			}
			run = next
		}
		return time.Time{}, fmt.Errorf("find the digest run before %s: more than %d runs in %v", t, maxRunsScanned, window)
	}
	return time.Time{}, fmt.Errorf("find the digest run before %s with schedule %q: %w", t, s.spec, ErrNoRun)
}
