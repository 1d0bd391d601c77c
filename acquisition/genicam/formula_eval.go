package genicam

import (
	"fmt"
	"math"
)

// evalInt evaluates f with integer semantics (IntSwissKnife, IntConverter):
// every value is an int64, / truncates towards zero, a division or modulo
// by zero is an error, shifts by 64 or more give 0 (or -1 for >> of a
// negative number), comparisons and logical operators give 1 or 0.
func (f *formula) evalInt(get func(slot int) (int64, error)) (int64, error) {
	v, err := evalIntExpr(f.root, get)
	if err != nil {
		return 0, fmt.Errorf("%w (formula %q)", err, clip(f.src))
	}
	return v, nil
}

// evalFloat evaluates f with floating-point semantics (SwissKnife,
// Converter): every value is a float64 and IEEE rules apply (x/0 is ±Inf);
// the bitwise operators work on the operands truncated to int64.
func (f *formula) evalFloat(get func(slot int) (float64, error)) (float64, error) {
	v, err := evalFloatExpr(f.root, get)
	if err != nil {
		return 0, fmt.Errorf("%w (formula %q)", err, clip(f.src))
	}
	return v, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func evalIntExpr(e *expr, get func(int) (int64, error)) (int64, error) {
	switch e.op {
	case opConst:
		return e.i, nil
	case opVar:
		return get(e.slot)
	case opCond, opAnd, opOr:
		a, err := evalIntExpr(e.a, get)
		if err != nil {
			return 0, err
		}
		switch {
		case e.op == opCond && a != 0:
			return evalIntExpr(e.b, get)
		case e.op == opCond:
			return evalIntExpr(e.c, get)
		case e.op == opAnd && a == 0, e.op == opOr && a != 0:
			return b2i(a != 0), nil
		}
		b, err := evalIntExpr(e.b, get)
		return b2i(b != 0), err
	case opFunc:
		return evalIntFunc(e, get)
	}
	a, err := evalIntExpr(e.a, get)
	if err != nil {
		return 0, err
	}
	switch e.op {
	case opNeg:
		return -a, nil
	case opPlus:
		return a, nil
	case opBitNot:
		return ^a, nil
	case opNot:
		return b2i(a == 0), nil
	}
	b, err := evalIntExpr(e.b, get)
	if err != nil {
		return 0, err
	}
	return intBinary(e.op, a, b)
}

func intBinary(op opcode, a, b int64) (int64, error) {
	switch op {
	case opAdd:
		return a + b, nil
	case opSub:
		return a - b, nil
	case opMul:
		return a * b, nil
	case opDiv, opMod:
		if b == 0 {
			return 0, fmt.Errorf("%w: integer division by zero", ErrFormula)
		}
		if op == opDiv {
			return a / b, nil
		}
		return a % b, nil
	case opPow:
		return intPow(a, b), nil
	case opShl:
		if b < 0 || b >= 64 {
			return 0, nil
		}
		return a << uint(b), nil
	case opShr:
		if b < 0 || b >= 64 {
			return a >> 63, nil
		}
		return a >> uint(b), nil
	case opBitAnd:
		return a & b, nil
	case opBitOr:
		return a | b, nil
	case opBitXor:
		return a ^ b, nil
	case opEq:
		return b2i(a == b), nil
	case opNe:
		return b2i(a != b), nil
	case opLt:
		return b2i(a < b), nil
	case opGt:
		return b2i(a > b), nil
	case opLe:
		return b2i(a <= b), nil
	case opGe:
		return b2i(a >= b), nil
	}
	return 0, fmt.Errorf("%w: bad operator %d", ErrFormula, op)
}

// intPow is a**b with wrap-around; negative exponents give the truncated
// reciprocal (0 unless |a| is 1).
func intPow(a, b int64) int64 {
	if b < 0 {
		switch a {
		case 1:
			return 1
		case -1:
			if b%2 == 0 {
				return 1
			}
			return -1
		}
		return 0
	}
	r := int64(1)
	for b > 0 {
		if b&1 != 0 {
			r *= a
		}
		a *= a
		b >>= 1
	}
	return r
}

func evalIntFunc(e *expr, get func(int) (int64, error)) (int64, error) {
	switch e.fn {
	case "E":
		return 2, nil
	case "PI":
		return 3, nil
	}
	a, err := evalIntExpr(e.args[0], get)
	if err != nil {
		return 0, err
	}
	if len(e.args) > 1 { // ROUND(x, n): an integer has no decimals to round
		if _, err := evalIntExpr(e.args[1], get); err != nil {
			return 0, err
		}
	}
	switch e.fn {
	case "SGN":
		return b2i(a > 0) - b2i(a < 0), nil
	case "NEG":
		return -a, nil
	case "ABS":
		if a < 0 {
			return -a, nil
		}
		return a, nil
	case "SQRT":
		if a < 0 {
			return 0, fmt.Errorf("%w: SQRT of negative %d", ErrFormula, a)
		}
		r := int64(math.Sqrt(float64(a)))
		for r*r > a {
			r--
		}
		for (r+1)*(r+1) <= a && (r+1)*(r+1) > 0 {
			r++
		}
		return r, nil
	}
	return a, nil // TRUNC, FLOOR, CEIL, ROUND of an integer
}

func f2b(f float64) bool { return f != 0 && !math.IsNaN(f) }

func bf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func evalFloatExpr(e *expr, get func(int) (float64, error)) (float64, error) {
	switch e.op {
	case opConst:
		return e.f, nil
	case opVar:
		return get(e.slot)
	case opCond, opAnd, opOr:
		a, err := evalFloatExpr(e.a, get)
		if err != nil {
			return 0, err
		}
		switch {
		case e.op == opCond && f2b(a):
			return evalFloatExpr(e.b, get)
		case e.op == opCond:
			return evalFloatExpr(e.c, get)
		case e.op == opAnd && !f2b(a), e.op == opOr && f2b(a):
			return bf(f2b(a)), nil
		}
		b, err := evalFloatExpr(e.b, get)
		return bf(f2b(b)), err
	case opFunc:
		return evalFloatFunc(e, get)
	}
	a, err := evalFloatExpr(e.a, get)
	if err != nil {
		return 0, err
	}
	switch e.op {
	case opNeg:
		return -a, nil
	case opPlus:
		return a, nil
	case opBitNot:
		return float64(^saturate(a)), nil
	case opNot:
		return bf(!f2b(a)), nil
	}
	b, err := evalFloatExpr(e.b, get)
	if err != nil {
		return 0, err
	}
	return floatBinary(e.op, a, b)
}

func floatBinary(op opcode, a, b float64) (float64, error) {
	switch op {
	case opAdd:
		return a + b, nil
	case opSub:
		return a - b, nil
	case opMul:
		return a * b, nil
	case opDiv:
		return a / b, nil
	case opMod:
		return math.Mod(a, b), nil
	case opPow:
		return math.Pow(a, b), nil
	case opEq:
		return bf(a == b), nil
	case opNe:
		return bf(a != b), nil
	case opLt:
		return bf(a < b), nil
	case opGt:
		return bf(a > b), nil
	case opLe:
		return bf(a <= b), nil
	case opGe:
		return bf(a >= b), nil
	}
	v, err := intBinary(op, saturate(a), saturate(b)) // shifts and bitwise
	return float64(v), err
}

func evalFloatFunc(e *expr, get func(int) (float64, error)) (float64, error) {
	switch e.fn {
	case "E":
		return math.E, nil
	case "PI":
		return math.Pi, nil
	}
	a, err := evalFloatExpr(e.args[0], get)
	if err != nil {
		return 0, err
	}
	switch e.fn {
	case "SGN":
		return bf(a > 0) - bf(a < 0), nil
	case "NEG":
		return -a, nil
	case "ABS":
		return math.Abs(a), nil
	case "SQRT":
		return math.Sqrt(a), nil
	case "TRUNC":
		return math.Trunc(a), nil
	case "FLOOR":
		return math.Floor(a), nil
	case "CEIL":
		return math.Ceil(a), nil
	}
	// ROUND(x) or ROUND(x, n): x rounded half away from zero to n decimals.
	if len(e.args) == 1 {
		return math.Round(a), nil
	}
	n, err := evalFloatExpr(e.args[1], get)
	if err != nil {
		return 0, err
	}
	if n = math.Trunc(n); n < -30 || n > 30 {
		return 0, fmt.Errorf("%w: ROUND to %v decimals", ErrFormula, n)
	}
	s := math.Pow(10, n)
	return math.Round(a*s) / s, nil
}

// saturate converts f to int64, truncating towards zero and clamping to
// the int64 range (NaN gives 0).
func saturate(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
