package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/webinspect/webinspect/internal/textcheck"
)

// Severities a recipe can give a defect, least severe first. The set is
// closed: a severity rule or decision rule naming anything else (a typo
// such as "Critical") is refused when the recipe is loaded, because a
// severity no decision rule knows would silently pass the defect.
const (
	SeverityMinor    = "minor"
	SeverityMajor    = "major"
	SeverityCritical = "critical"
)

// Severities lists the closed set of severities, least severe first.
var Severities = []string{SeverityMinor, SeverityMajor, SeverityCritical}

// DefaultSeverity is the severity of a defect no severity rule matches
// (see Classify).
const DefaultSeverity = SeverityMinor

// defaultClass is the class of a defect no class rule matches.
const defaultClass = "other"

// ValidateSeverities checks the recipe's severity and decision rules
// against the closed set of Severities, and that every severity a severity
// rule can give, for every class Classify can give that rule applies to,
// meets an explicit decision rule: a defect rated by a rule never falls
// through to the default "pass" because nobody wrote a decision for it.
// (A defect no severity rule matches is DefaultSeverity and, with no
// decision rule for it, passes: the documented default.) The error names
// the field, e.g. `severity[2].severity = "Critical"`.
func (r *Recipe) ValidateSeverities() error {
	for i, s := range r.Severity {
		if !slices.Contains(Severities, s.Severity) {
			return fmt.Errorf("severity[%d].severity = %.64q: must be one of %s", i, s.Severity, strings.Join(Severities, ", "))
		}
	}
	for i, d := range r.Decisions {
		if d.Severity != "*" && !slices.Contains(Severities, d.Severity) {
			return fmt.Errorf("decisions[%d].severity = %.64q: must be one of *, %s", i, d.Severity, strings.Join(Severities, ", "))
		}
	}
	classes := r.producibleClasses()
	for i, s := range r.Severity {
		for _, class := range classes {
			if (s.Class == "*" || s.Class == class) && !r.hasDecision(class, s.Severity) {
				return fmt.Errorf("severity[%d]: class %q with severity %q meets no decision rule (add one to decisions, e.g. {\"class\": \"*\", \"severity\": %q, \"decision\": \"mark\"})",
					i, class, s.Severity, s.Severity)
			}
		}
	}
	return nil
}

// producibleClasses returns the classes Classify can give: each rule's
// name, and the default class unless an unconditional rule precedes it.
func (r *Recipe) producibleClasses() []string {
	var out []string
	for _, c := range r.Classes {
		if !slices.Contains(out, c.Name) {
			out = append(out, c.Name)
		}
		if c.unconditional() {
			return out
		}
	}
	if !slices.Contains(out, defaultClass) {
		out = append(out, defaultClass)
	}
	return out
}

func (c ClassRule) unconditional() bool {
	return c == ClassRule{Name: c.Name}
}

func (r *Recipe) hasDecision(class, severity string) bool {
	return r.decisionRule(class, severity) >= 0
}

// ValidateText checks the recipe's free-text fields with internal/textcheck:
// the name and every class and lane name at most textcheck.MaxName bytes,
// without control or bidirectional formatting characters. The name reaches
// roll.json, which every flush rewrites, and the operator's screen.
func (r *Recipe) ValidateText() error {
	if err := textcheck.Check("name", r.Name, textcheck.MaxName); err != nil {
		return err
	}
	for i, c := range r.Classes {
		if err := textcheck.Check(fmt.Sprintf("classes[%d].name", i), c.Name, textcheck.MaxName); err != nil {
			return err
		}
	}
	for i, l := range r.Lanes {
		if err := textcheck.Check(fmt.Sprintf("lanes[%d].name", i), l.Name, textcheck.MaxName); err != nil {
			return err
		}
	}
	return nil
}
