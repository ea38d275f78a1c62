package main

import (
	"fmt"
	"strings"
	"time"
)

const addedLatency = 100 * time.Millisecond

// setupPair is a cold setup and its rerun.
type setupPair struct{ cold, rerun setupRun }

// nearMedian is the run, of those pick chooses, whose wall time is nearest
// their median.
func nearMedian(ps []setupPair, pick func(setupPair) setupRun) setupRun {
	var walls series
	for _, p := range ps {
		walls = append(walls, pick(p).Wall)
	}
	m := walls.median()
	best := pick(ps[0])
	for _, p := range ps {
		if r := pick(p); (r.Wall - m).Abs() < (best.Wall - m).Abs() {
			best = r
		}
	}
	return best
}

// scenarioSetupLatency: a cold setup and a rerun, straight to moto and through
// a proxy that adds 100 ms to every AWS call. Round trips are wall time over
// 100 ms; the difference between the two paths is what the latency cost, the
// direct path is what moto and the process cost without it.
func (b *bench) scenarioSetupLatency() error {
	proxy, err := startLatencyProxy(b.motoURL, addedLatency)
	if err != nil {
		return err
	}
	defer proxy.Close()
	progress("setup: latency proxy %s -> %s (+%s per response)", proxy.URL, b.motoURL, addedLatency)

	var direct, slow []setupPair
	var coldLevels, rerunLevels [][]string
	pair := func(endpoint string) (setupPair, error) {
		if err := b.resetMoto(); err != nil {
			return setupPair{}, err
		}
		cold, err := b.setup(endpoint, setupNames{})
		if err != nil {
			return setupPair{}, err
		}
		rerun, err := b.setup(endpoint, setupNames{})
		if err != nil {
			return setupPair{}, err
		}
		return setupPair{cold, rerun}, nil
	}
	rounds := b.runs
	for round := -1; round < rounds; round++ {
		d, err := pair(b.motoURL)
		if err != nil {
			return err
		}
		s, err := pair(proxy.URL)
		if err != nil {
			return err
		}
		if round < 0 {
			continue
		}
		direct, slow = append(direct, d), append(slow, s)
		progress("  round %d/%d: direct cold %s rerun %s; +100 ms cold %s rerun %s", round+1, rounds,
			ms(d.cold.Wall), ms(d.rerun.Wall), ms(s.cold.Wall), ms(s.rerun.Wall))
	}
	b.setupVars = nil // the state is the proxy's last run's: ciVars starts afresh
	// The critical path shown is that of the run nearest the median.
	coldLevels = callLevels(nearMedian(slow, func(s setupPair) setupRun { return s.cold }).StderrLines, addedLatency)
	rerunLevels = callLevels(nearMedian(slow, func(s setupPair) setupRun { return s.rerun }).StderrLines, addedLatency)

	walls := func(ss []setupPair, cold bool) series {
		var out series
		for _, s := range ss {
			if cold {
				out = append(out, s.cold.Wall)
			} else {
				out = append(out, s.rerun.Wall)
			}
		}
		return out
	}
	calls := func(ss []setupPair, cold bool) (int64, int64) {
		var c, m []int64
		for _, s := range ss {
			r := s.rerun
			if cold {
				r = s.cold
			}
			c, m = append(c, int64(r.Calls)), append(m, int64(r.Mutating))
		}
		return medianInt(c), medianInt(m)
	}

	section(b.out, "2. Setup with 100 ms added to every AWS call",
		"A toxiproxy (v2.5.0, in this process) between containerise and moto delays every response by 100 ms.",
		"cold: after POST /moto-api/reset; rerun: the same setup again at once (nothing drifted).",
		"Each round: reset, cold, rerun straight to moto, then reset, cold, rerun through the proxy.",
		"round trips = wall time / 100 ms; added = (through proxy - direct) / 100 ms, the part the latency",
		"cost, net of moto's own time and process start-up. levels: the length of the critical path of",
		"calls (below); no run can take fewer round trips than that. Calls and mutating calls from --verbose.",
		fmt.Sprintf("%d rounds after one warm-up round.", rounds))
	t := newTable("setup", "direct", "+100 ms/call", "round trips", "added RTs", "levels", "calls", "mutating")
	type row struct {
		name   string
		cold   bool
		max    float64
		levels int
	}
	for _, r := range []row{{"cold", true, 6, len(coldLevels)}, {"rerun", false, 3, len(rerunLevels)}} {
		dw, sw := walls(direct, r.cold).median(), walls(slow, r.cold).median()
		c, m := calls(slow, r.cold)
		rt := float64(sw) / float64(addedLatency)
		added := float64(sw-dw) / float64(addedLatency)
		t.add(r.name, ms(dw), ms(sw), fmt.Sprintf("%.1f", rt), fmt.Sprintf("%.1f", added), fmt.Sprint(r.levels), fmt.Sprint(c), fmt.Sprint(m))
		b.target("2 setup", fmt.Sprintf("%s setup in <= %.0f round trips", r.name, r.max),
			fmt.Sprintf("%.1f RTs (%d levels of calls, %.1f RTs added)", rt, r.levels, added), rt <= r.max)
	}
	t.write(b.out)
	_, rerunMutating := calls(slow, false)
	b.target("2 setup", "rerun makes no mutating call", fmt.Sprintf("%d mutating", rerunMutating), rerunMutating == 0)

	fmt.Fprintln(b.out, "\n  critical path of the run through the proxy nearest the median: calls by level, from the times their")
	fmt.Fprintln(b.out, "  --verbose lines arrived (a level ran concurrently; each level waited for one round trip more)")
	for _, x := range []struct {
		name   string
		levels [][]string
	}{{"cold", coldLevels}, {"rerun", rerunLevels}} {
		for i, l := range x.levels {
			name := ""
			if i == 0 {
				name = x.name
			}
			fmt.Fprintf(b.out, "  %-5s  %d  %s\n", name, i+1, strings.Join(l, " "))
		}
	}
	return nil
}
