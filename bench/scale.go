package main

import "fmt"

func scaleNames(i int) setupNames {
	s := fmt.Sprintf("bench-scale-%03d", i)
	return setupNames{Repository: s, Policy: s, User: s, Role: s}
}

// scenarioScale: successive setups with different names, so that the account
// holds 1, 10 and 50 managed sets; the cost of one setup (and of a rerun)
// should not grow with what else the account holds.
func (b *bench) scenarioScale() error {
	sizes := []int{1, 10, 50}
	if b.quick {
		sizes = []int{1, 5, 10}
	}
	samples := min(b.runs, 3) // cold setups measured per size: the last ones before it is reached
	reruns := b.runs

	type point struct {
		size                        int
		cold, rerun                 series
		coldCalls, coldMut, rrCalls []int64
		rrMut                       []int64
	}
	var points []point
	record := func(p *point, sr setupRun, cold bool) {
		if cold {
			p.cold = append(p.cold, sr.Wall)
			p.coldCalls = append(p.coldCalls, int64(sr.Calls))
			p.coldMut = append(p.coldMut, int64(sr.Mutating))
		} else {
			p.rerun = append(p.rerun, sr.Wall)
			p.rrCalls = append(p.rrCalls, int64(sr.Calls))
			p.rrMut = append(p.rrMut, int64(sr.Mutating))
		}
	}

	// Size 1 has no setups before it: measure it by resetting before each.
	p := point{size: 1}
	for i := range samples {
		if err := b.resetMoto(); err != nil {
			return err
		}
		sr, err := b.setup(b.motoURL, scaleNames(1))
		if err != nil {
			return err
		}
		record(&p, sr, true)
		progress("  scale 1: cold %d/%d %s", i+1, samples, ms(sr.Wall))
	}
	held := 1
	for _, size := range sizes {
		if size > 1 {
			p = point{size: size}
			for held < size {
				held++
				sr, err := b.setup(b.motoURL, scaleNames(held))
				if err != nil {
					return err
				}
				if held > size-samples {
					record(&p, sr, true)
				}
			}
			progress("  scale %d: cold %s", size, ms(p.cold.median()))
		}
		for range reruns {
			sr, err := b.setup(b.motoURL, scaleNames(held))
			if err != nil {
				return err
			}
			record(&p, sr, false)
		}
		progress("  scale %d: rerun %s", size, ms(p.rerun.median()))
		points = append(points, p)
	}
	if err := b.resetMoto(); err != nil {
		return err
	}

	section(b.out, "5. Scale of setup: one account holding 1, 10, 50 managed sets",
		"Successive setups with different names (bench-scale-NNN for repository, policy, user and role),",
		"straight to moto. cold: median of the setups that brought the account to that size (for size 1,",
		fmt.Sprintf("%d setups each after a reset; else the last %d before the size was reached). rerun: %d reruns", samples, samples, reruns),
		"of the newest set at that size. Calls and mutating calls from --verbose.")
	t := newTable("sets held", "cold", "cold calls", "cold mutating", "rerun", "rerun calls", "rerun mutating")
	for _, p := range points {
		t.add(fmt.Sprint(p.size), ms(p.cold.median()), fmt.Sprint(medianInt(p.coldCalls)), fmt.Sprint(medianInt(p.coldMut)),
			ms(p.rerun.median()), fmt.Sprint(medianInt(p.rrCalls)), fmt.Sprint(medianInt(p.rrMut)))
	}
	t.write(b.out)

	first, last := points[0], points[len(points)-1]
	sameCalls := medianInt(first.coldCalls) == medianInt(last.coldCalls) && medianInt(first.rrCalls) == medianInt(last.rrCalls)
	coldRatio := float64(last.cold.median()) / float64(first.cold.median())
	rerunRatio := float64(last.rerun.median()) / float64(first.rerun.median())
	flatTime := coldRatio <= 1.5 && rerunRatio <= 1.5
	fmt.Fprintf(b.out, "\n  target: calls per setup the same at %d and %d sets: %s\n", first.size, last.size, verdict(sameCalls))
	fmt.Fprintf(b.out, "  target: time per setup flat (at %d sets within 1.5x of 1 set): cold %.2fx, rerun %.2fx, %s\n",
		last.size, coldRatio, rerunRatio, verdict(flatTime))
	b.target("5 scale", fmt.Sprintf("calls per setup flat, 1 -> %d sets", last.size),
		fmt.Sprintf("cold %d -> %d, rerun %d -> %d", medianInt(first.coldCalls), medianInt(last.coldCalls), medianInt(first.rrCalls), medianInt(last.rrCalls)), sameCalls)
	b.target("5 scale", fmt.Sprintf("time per setup flat, 1 -> %d sets (<= 1.5x)", last.size),
		fmt.Sprintf("cold %.2fx, rerun %.2fx", coldRatio, rerunRatio), flatTime)
	return nil
}
