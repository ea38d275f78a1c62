package resource

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// step is a test step that records when it ran.
func step(name string, log *[]string, mu *sync.Mutex, err error, needs ...*Step) *Step {
	return &Step{Action: name, Needs: needs, Do: func(context.Context) error {
		mu.Lock()
		*log = append(*log, name)
		mu.Unlock()
		return err
	}}
}

func TestApplyRunsStepsAfterWhatTheyNeed(t *testing.T) {
	var log []string
	var mu sync.Mutex
	p := &Plan{}
	r := &Report{Kind: "x"}
	a := p.Add(r, step("a", &log, &mu, nil))
	b := p.Add(r, step("b", &log, &mu, nil, a))
	c := p.Add(r, step("c", &log, &mu, nil, a, b))
	p.Apply(context.Background())
	if len(log) != 3 || log[0] != "a" || log[1] != "b" || log[2] != "c" {
		t.Fatalf("order %v", log)
	}
	for _, s := range []*Step{a, b, c} {
		if !s.OK() {
			t.Errorf("%s not ok", s.Action)
		}
	}
}

func TestApplyRunsIndependentStepsTogether(t *testing.T) {
	p := &Plan{}
	r := &Report{Kind: "x"}
	var wg sync.WaitGroup
	wg.Add(2)
	meet := func(context.Context) error {
		wg.Done()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the other step never ran alongside")
		}
	}
	one := p.Add(r, &Step{Action: "one", Do: meet})
	two := p.Add(r, &Step{Action: "two", Do: meet})
	p.Apply(context.Background())
	if !one.OK() || !two.OK() {
		t.Fatalf("%v, %v", one.Err(), two.Err())
	}
}

func TestAFailureSkipsWhatNeedsItAndNothingElse(t *testing.T) {
	var log []string
	var mu sync.Mutex
	p := &Plan{}
	r, other := &Report{Kind: "x"}, &Report{Kind: "y"}
	boom := errors.New("boom")
	a := p.Add(r, step("a", &log, &mu, boom))
	var skippedBecause *Step
	b := p.Add(r, step("b", &log, &mu, nil, a))
	c := p.Add(other, step("c", &log, &mu, nil, b))
	c.Skipped = func(_ context.Context, cause *Step) error {
		skippedBecause = cause
		return errors.New("c could not run")
	}
	d := p.Add(other, step("d", &log, &mu, nil))
	p.Apply(context.Background())
	if b.OK() || c.OK() || !d.OK() {
		t.Fatalf("b %v c %v d %v", b.OK(), c.OK(), d.OK())
	}
	if skippedBecause != a {
		t.Errorf("c was skipped because of %v, want the step that failed, a", skippedBecause)
	}
	if FirstError(r) != boom || FirstError(other) == nil {
		t.Errorf("first errors %v, %v", FirstError(r), FirstError(other))
	}
}

func TestStepsThatAskRunOnlyWhenConfirmed(t *testing.T) {
	for _, confirmed := range []bool{false, true} {
		var log []string
		var mu sync.Mutex
		p := &Plan{}
		r := &Report{Kind: "x"}
		declined := false
		s := p.Add(r, step("delete what CI may use", &log, &mu, nil))
		s.Confirm, s.Declined = "delete it", func() { declined = true }
		after := p.Add(r, step("after", &log, &mu, nil, s))
		if q := p.Questions(); len(q) != 1 || q[0] != "delete it" {
			t.Fatalf("questions %v", q)
		}
		if confirmed {
			p.Confirm()
		}
		p.Apply(context.Background())
		if s.OK() != confirmed || declined == confirmed || after.OK() != confirmed {
			t.Errorf("confirmed %v: ran %v, declined %v, after %v", confirmed, s.OK(), declined, after.OK())
		}
	}
}

func TestLaterRunsOnceEveryResourceAddedItsSteps(t *testing.T) {
	p := &Plan{}
	var order []string
	p.Later(func() {
		order = append(order, "first later")
		p.Later(func() { order = append(order, "later of later") })
	})
	order = append(order, "planning")
	p.runLater()
	if len(order) != 3 || order[2] != "later of later" {
		t.Fatalf("order %v", order)
	}
}
