package policies

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLifecyclePolicyGolden pins the documents setup writes, byte for byte:
// a change to a rule's wording or shape shows in review as a change here.
func TestLifecyclePolicyGolden(t *testing.T) {
	for _, c := range []struct {
		golden string
		r      Retention
	}{
		{"lifecycle-keep10-untagged7.json", Retention{KeepImages: 10, ExpireUntaggedDays: 7}},
		{"lifecycle-keep1.json", Retention{KeepImages: 1}},
		{"lifecycle-untagged14.json", Retention{ExpireUntaggedDays: 14}},
		{"lifecycle-archive90.json", Retention{ArchiveAfterDays: 90}},
		{"lifecycle-keep10-untagged7-archive30.json", Retention{KeepImages: 10, ExpireUntaggedDays: 7, ArchiveAfterDays: 30}},
	} {
		doc, ok := LifecyclePolicy(c.r)
		if !ok {
			t.Fatalf("%+v: no policy", c.r)
		}
		got := doc.JSON() + "\n"
		matchGolden(t, c.golden, got)
		// What setup writes, it recognises as its own, with the same values.
		if back, ours := SetupRetention(got); !ours || back != c.r {
			t.Errorf("%s: SetupRetention = %+v, %v; want %+v, true", c.golden, back, ours, c.r)
		}
	}
	if _, ok := LifecyclePolicy(Retention{}); ok {
		t.Error("no retention asked: want no policy")
	}
}

// TestLifecycleRulesFollowECRsOrder: a rule selecting tagStatus "any" must
// have the highest priority number, so the untagged rule comes first.
func TestLifecycleRulesFollowECRsOrder(t *testing.T) {
	doc, _ := LifecyclePolicy(Retention{KeepImages: 3, ExpireUntaggedDays: 1})
	if len(doc.Rules) != 2 {
		t.Fatalf("rules: %+v", doc.Rules)
	}
	untagged, keep := doc.Rules[0], doc.Rules[1]
	if untagged.Selection.TagStatus != "untagged" || keep.Selection.TagStatus != "any" || keep.RulePriority <= untagged.RulePriority {
		t.Errorf("the 'any' rule must come last: %+v", doc.Rules)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(doc.JSON()), &raw); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if strings.Contains(doc.JSON(), "tagPrefixList") || strings.Contains(keepRule(3).Selection.CountUnit, "days") {
		t.Errorf("empty fields must be left out: %s", doc.JSON())
	}
}

func TestSetupRetentionRecognisesOnlySetupsRules(t *testing.T) {
	ours := func(r Retention) string { d, _ := LifecyclePolicy(r); return d.JSON() }
	handMade := `{"rules":[{"rulePriority":1,"description":"keep prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}}]}`
	for _, c := range []struct {
		name string
		text string
		want Retention
		ours bool
	}{
		{"setup's, both rules", ours(Retention{KeepImages: 5, ExpireUntaggedDays: 2}), Retention{KeepImages: 5, ExpireUntaggedDays: 2}, true},
		{"setup's, compact and reordered as ECR may return it",
			`{"rules":[{"action":{"type":"expire"},"selection":{"countNumber":20,"countType":"imageCountMoreThan","tagStatus":"any"},"description":"containerise: keep the 10 images most recently pushed","rulePriority":2}]}`,
			Retention{KeepImages: 20}, true},
		{"no rules at all", `{"rules":[]}`, Retention{}, true},
		{"a hand-made rule", handMade, Retention{}, false},
		{"setup's description on another shape", strings.Replace(ours(Retention{KeepImages: 5}), `"any"`, `"tagged"`, 1), Retention{}, false},
		{"a field this version does not know", strings.Replace(ours(Retention{KeepImages: 5}), `"type": "expire"`, `"type": "expire", "storageTier": "cold"`, 1), Retention{}, false},
		{"setup's, with the archive rule", ours(Retention{KeepImages: 5, ArchiveAfterDays: 60}), Retention{KeepImages: 5, ArchiveAfterDays: 60}, true},
		{"an expire rule with an archive target", strings.Replace(ours(Retention{KeepImages: 5}), `"type": "expire"`, `"type": "expire", "targetStorageClass": "archive"`, 1), Retention{}, false},
		{"setup's archive description on an expire rule", strings.Replace(ours(Retention{ArchiveAfterDays: 5}), `"type": "transition"`, `"type": "expire"`, 1), Retention{}, false},
		{"setup's keep rule selecting archived images", strings.Replace(ours(Retention{KeepImages: 5}), `"tagStatus": "any",`, `"tagStatus": "any", "storageClass": "archive",`, 1), Retention{}, false},
		{"two keep rules", `{"rules":[` + strings.Join([]string{jsonRule(keepRule(3)), jsonRule(keepRule(4))}, ",") + `]}`, Retention{}, false},
		{"not JSON", `rules: []`, Retention{}, false},
	} {
		got, isOurs := SetupRetention(c.text)
		if got != c.want || isOurs != c.ours {
			t.Errorf("%s: SetupRetention = %+v, %v; want %+v, %v", c.name, got, isOurs, c.want, c.ours)
		}
	}
}

func jsonRule(r LifecycleRule) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestLifecycleEquivalentIgnoresLayoutNotContent(t *testing.T) {
	want, _ := LifecyclePolicy(Retention{KeepImages: 10, ExpireUntaggedDays: 7})
	compact, _ := json.Marshal(want)
	reordered := `{"rules":[` + jsonRule(want.Rules[1]) + "," + jsonRule(want.Rules[0]) + `]}`
	other, _ := LifecyclePolicy(Retention{KeepImages: 11, ExpireUntaggedDays: 7})
	for _, c := range []struct {
		name, have string
		same       bool
	}{
		{"as written", want.JSON(), true},
		{"compact", string(compact), true},
		{"rules in another order", reordered, true},
		{"another count", other.JSON(), false},
		{"an extra field", strings.Replace(want.JSON(), `"type": "expire"`, `"type": "expire", "x": 1`, 1), false},
		{"one rule fewer", `{"rules":[` + jsonRule(want.Rules[0]) + `]}`, false},
	} {
		got, err := LifecycleEquivalent(c.have, want)
		if err != nil || got != c.same {
			t.Errorf("%s: LifecycleEquivalent = %v, %v; want %v", c.name, got, err, c.same)
		}
	}
	if _, err := LifecycleEquivalent("{", want); err == nil {
		t.Error("unreadable policy: want an error")
	}
}

func TestRetentionDescribe(t *testing.T) {
	for r, want := range map[Retention]string{
		{KeepImages: 10, ExpireUntaggedDays: 7}: "keep the 10 images most recently pushed; expire untagged images 7 days after their push",
		{KeepImages: 1}:                         "keep the 1 image most recently pushed",
		{ExpireUntaggedDays: 1}:                 "expire untagged images 1 day after their push",
		{}:                                      "no lifecycle rules",
	} {
		if got := r.Describe(); got != want {
			t.Errorf("%+v: %q, want %q", r, got, want)
		}
	}
}

// TestArchiveRuleKeepsECRsOrder: with the archive rule, the keep rule is
// still the only "any" rule and the last; without it, the priorities of
// policies written before stay as they were.
func TestArchiveRuleKeepsECRsOrder(t *testing.T) {
	doc, _ := LifecyclePolicy(Retention{KeepImages: 3, ExpireUntaggedDays: 1, ArchiveAfterDays: 30})
	anyRules, last := 0, doc.Rules[len(doc.Rules)-1]
	seen := map[int]bool{}
	for _, r := range doc.Rules {
		if r.Selection.TagStatus == "any" {
			anyRules++
		}
		if seen[r.RulePriority] || r.RulePriority > last.RulePriority {
			t.Errorf("priorities must be unique, the 'any' rule's the highest: %+v", doc.Rules)
		}
		seen[r.RulePriority] = true
	}
	if anyRules != 1 || last.Selection.TagStatus != "any" {
		t.Errorf("want exactly one 'any' rule, last: %s", doc.JSON())
	}
	archive := doc.Rules[1]
	if archive.Action.Type != "transition" || archive.Action.TargetStorageClass != "archive" || archive.Selection.CountType != "sinceImagePulled" {
		t.Errorf("archive rule: %+v", archive)
	}
	before, _ := LifecyclePolicy(Retention{KeepImages: 3, ExpireUntaggedDays: 1})
	if before.Rules[1].RulePriority != keepPriority {
		t.Errorf("without an archive rule the keep rule's priority changed: %+v", before.Rules)
	}
}
