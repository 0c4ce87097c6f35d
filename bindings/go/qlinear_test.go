package qlinear_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime"
	"sync"
	"testing"

	qlinear "github.com/qlinear/qlinear-go"
)

// randomVec returns deterministic values uniform in [-scale, scale).
func randomVec(n int, scale float32, seed uint64) []float32 {
	v := make([]float32, n)
	s := seed*0x9E3779B97F4A7C15 + 1
	for i := range v {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		v[i] = float32((float64(s>>11)/9007199254740992.0*2 - 1) * float64(scale))
	}
	return v
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// must(f())(t) returns f's value, failing the test on f's error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr checks that err is a *qlinear.Error matching sentinel, with a message.
func wantErr(t *testing.T, err error, sentinel error, what string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got %v, want %v", what, err, sentinel)
		return
	}
	var qe *qlinear.Error
	if !errors.As(err, &qe) || qe.Message == "" {
		t.Errorf("%s: %v has no library message", what, err)
	}
}

// dequant is w[r][c] = scale·(q − zero), straight from the documented layout.
func dequant(p *qlinear.Parts, r, c int) float64 {
	var q int
	if p.Bits == 8 {
		q = int(int8(p.Codes[r*p.In+c]))
	} else {
		b := p.Codes[r*((p.In+1)/2)+c/2]
		nib := int(b & 0x0F)
		if c%2 == 1 {
			nib = int(b >> 4)
		}
		switch {
		case len(p.Codebook) > 0: // an index into the levels
			nib = int(p.Codebook[nib])
		case nib >= 8:
			nib -= 16
		}
		q = nib
	}
	gs := p.In
	if p.Granularity == qlinear.Group {
		gs = p.GroupSize
	}
	groups := (p.In + gs - 1) / gs
	si := r*groups + c/gs
	if p.Granularity == qlinear.PerTensor {
		si = 0
	}
	zero := 0
	if len(p.ZeroPoints) > 0 {
		zero = int(p.ZeroPoints[si])
	}
	return float64(p.Scales[si]) * float64(q-zero)
}

// checkReference compares y with a float64 reference from the layer's copied-out parts.
func checkReference(t *testing.T, q *qlinear.QuantizedLinear, x []float32, rows int, bias, y []float32) {
	t.Helper()
	p := must(q.Parts())(t)
	n, k := p.Out, p.In
	if len(y) != rows*n {
		t.Fatalf("len(y) = %d, want %d", len(y), rows*n)
	}
	bad := 0
	for r := 0; r < rows; r++ {
		xmax := 0.0
		for c := 0; c < k; c++ {
			xmax = math.Max(xmax, math.Abs(float64(x[r*k+c])))
		}
		for j := 0; j < n; j++ {
			ref, mag, sw := 0.0, 0.0, 0.0
			if bias != nil {
				ref, mag = float64(bias[j]), math.Abs(float64(bias[j]))
			}
			for c := 0; c < k; c++ {
				w := dequant(p, j, c)
				ref += float64(x[r*k+c]) * w
				mag += math.Abs(float64(x[r*k+c]) * w)
				sw += math.Abs(w)
			}
			tol := 1e-4*mag + 1e-6
			// Either dyn8 mode: half a step of the row's largest activation bounds the
			// block-wise steps too.
			if p.ActivationMode != qlinear.ActivationExact {
				tol += xmax / 127 / 2 * sw
			}
			if math.Abs(float64(y[r*n+j])-ref) > tol {
				bad++
			}
		}
	}
	if bad != 0 {
		t.Errorf("%d outputs differ from the reference", bad)
	}
}

func TestVersion(t *testing.T) {
	if v := qlinear.Version(); v != "0.1.0" && len(v) < 5 {
		t.Errorf("Version() = %q", v)
	}
}

func TestDevice(t *testing.T) {
	d := must(qlinear.NewDevice(1))(t)
	defer d.Close()
	if d.Threads() != 1 {
		t.Errorf("Threads() = %d", d.Threads())
	}
	switch d.ISA() {
	case "scalar", "avx2", "avx512":
	default:
		t.Errorf("ISA() = %q", d.ISA())
	}
	d3 := must(qlinear.NewDevice(3))(t)
	if d3.Threads() != 3 {
		t.Errorf("Threads() = %d", d3.Threads())
	}
	d3.Close()
	d3.Close() // idempotent

	s := must(qlinear.NewDeviceWithISA(1, "scalar"))(t)
	if s.ISA() != "scalar" {
		t.Errorf("ISA() = %q", s.ISA())
	}
	s.Close()
	for _, name := range []string{"avx2", "avx512"} {
		ok := must(qlinear.ISAAvailable(name))(t)
		d, err := qlinear.NewDeviceWithISA(1, name)
		if ok {
			if err != nil || d.ISA() != name {
				t.Errorf("%s: %v", name, err)
			}
			d.Close()
		} else {
			wantErr(t, err, qlinear.ErrUnsupported, name)
		}
	}
	_, err := qlinear.NewDeviceWithISA(1, "sse9")
	wantErr(t, err, qlinear.ErrInvalidArgument, "unknown ISA")
	_, err = qlinear.ISAAvailable("sse9")
	wantErr(t, err, qlinear.ErrInvalidArgument, "ISAAvailable(sse9)")
	_, err = qlinear.NewDevice(-1)
	wantErr(t, err, qlinear.ErrInvalidArgument, "NewDevice(-1)")
}

func TestQuantConfig(t *testing.T) {
	c := must(qlinear.NewQuantConfigInt8())(t)
	defer c.Close()
	for _, err := range []error{
		c.SetBits(4), c.SetBits(8), c.SetGroupSize(64), c.SetGroupSize(0),
		c.SetGranularity(qlinear.PerTensor, 0), c.SetSymmetric(false),
		c.SetActivationMode(qlinear.ActivationDyn8), c.SetScaleDtype(qlinear.ScaleF32), c.SetSearch(false),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	wantErr(t, c.SetFormat(qlinear.FormatCb4), qlinear.ErrInvalidArgument, "cb4 with zero points")
	wantErr(t, c.SetFormat(7), qlinear.ErrInvalidArgument, "SetFormat(7)")
	wantErr(t, c.SetBits(5), qlinear.ErrInvalidArgument, "SetBits(5)")
	wantErr(t, c.SetBits(-1), qlinear.ErrInvalidArgument, "SetBits(-1)")
	wantErr(t, c.SetGroupSize(48), qlinear.ErrInvalidArgument, "SetGroupSize(48)")
	wantErr(t, c.SetGroupSize(16), qlinear.ErrInvalidArgument, "SetGroupSize(16)")
	wantErr(t, c.SetGroupSize(2048), qlinear.ErrInvalidArgument, "SetGroupSize(2048)")
	wantErr(t, c.SetGranularity(qlinear.Group, 33), qlinear.ErrInvalidArgument, "group 33")
	wantErr(t, c.SetGranularity(9, 0), qlinear.ErrInvalidArgument, "granularity 9")
	wantErr(t, c.SetActivationMode(7), qlinear.ErrInvalidArgument, "mode 7")
	wantErr(t, c.SetScaleDtype(7), qlinear.ErrInvalidArgument, "dtype 7")
	_, err := qlinear.NewQuantConfig(3)
	wantErr(t, err, qlinear.ErrInvalidArgument, "NewQuantConfig(3)")
	c4 := must(qlinear.NewQuantConfig(4))(t)
	c4.Close()
	c4.Close()
	wantErr(t, c4.SetBits(8), qlinear.ErrNullArgument, "closed config")
}

func TestLinear(t *testing.T) {
	const n, k, rows = 48, 64, 3
	dev := must(qlinear.NewDevice(1))(t)
	defer dev.Close()
	w, b, x := randomVec(n*k, 0.2, 1), randomVec(n, 0.1, 2), randomVec(rows*k, 1, 3)
	l := must(qlinear.NewLinear(dev, w, b, k, n))(t)
	defer l.Close()
	if l.InFeatures() != k || l.OutFeatures() != n {
		t.Errorf("shape %d x %d", l.OutFeatures(), l.InFeatures())
	}
	y := must(l.Forward(x, rows))(t)
	for r := 0; r < rows; r++ {
		for j := 0; j < n; j++ {
			ref, mag := float64(b[j]), math.Abs(float64(b[j]))
			for c := 0; c < k; c++ {
				ref += float64(x[r*k+c]) * float64(w[j*k+c])
				mag += math.Abs(float64(x[r*k+c]) * float64(w[j*k+c]))
			}
			if math.Abs(float64(y[r*n+j])-ref) > 1e-5*mag+1e-6 {
				t.Fatalf("y[%d][%d] = %g, want %g", r, j, y[r*n+j], ref)
			}
		}
	}
	y2 := make([]float32, rows*n)
	if err := l.ForwardInto(x, rows, y2); err != nil || !sameBits(y, y2) {
		t.Errorf("ForwardInto: %v", err)
	}

	_, err := qlinear.NewLinear(dev, w[:n*k-1], b, k, n)
	wantErr(t, err, qlinear.ErrInvalidArgument, "short weights")
	_, err = qlinear.NewLinear(dev, w, b[:n-1], k, n)
	wantErr(t, err, qlinear.ErrInvalidArgument, "short bias")
	_, err = qlinear.NewLinear(dev, nil, nil, k, n)
	wantErr(t, err, qlinear.ErrNullArgument, "nil weights")
	_, err = qlinear.NewLinear(dev, w, nil, -k, n)
	wantErr(t, err, qlinear.ErrInvalidArgument, "negative in")
	wn := append([]float32(nil), w...)
	wn[5] = float32(math.NaN())
	_, err = qlinear.NewLinear(dev, wn, nil, k, n)
	wantErr(t, err, qlinear.ErrInvalidArgument, "NaN weight")
	_, err = l.Forward(x, rows+1)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward wrong rows")
	_, err = l.Forward(x, 0)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward zero rows")
	wantErr(t, l.ForwardInto(x, rows, y2[:len(y2)-1]), qlinear.ErrInvalidArgument, "short y")
}

type recipe struct {
	name        string
	format      qlinear.WeightFormat
	granularity qlinear.Granularity
	group       int
	symmetric   bool
	dtype       qlinear.ScaleDtype
	mode        qlinear.ActivationMode
}

func TestQuantizeRecipes(t *testing.T) {
	recipes := []recipe{
		{"int8 g32 sym f16", qlinear.FormatInt8, qlinear.Group, 32, true, qlinear.ScaleF16, qlinear.ActivationExact},
		{"int4 g32 sym f16", qlinear.FormatInt4, qlinear.Group, 32, true, qlinear.ScaleF16, qlinear.ActivationExact},
		{"int4 g32 asym f32", qlinear.FormatInt4, qlinear.Group, 32, false, qlinear.ScaleF32, qlinear.ActivationExact},
		{"int8 channel asym", qlinear.FormatInt8, qlinear.PerChannel, 0, false, qlinear.ScaleF32, qlinear.ActivationExact},
		{"int4 tensor sym", qlinear.FormatInt4, qlinear.PerTensor, 0, true, qlinear.ScaleF16, qlinear.ActivationExact},
		{"int8 g64 dyn8", qlinear.FormatInt8, qlinear.Group, 64, true, qlinear.ScaleF16, qlinear.ActivationDyn8},
		{"cb4 g32 f16", qlinear.FormatCb4, qlinear.Group, 32, true, qlinear.ScaleF16, qlinear.ActivationExact},
		{"cb4 g64 f32 dyn8", qlinear.FormatCb4, qlinear.Group, 64, true, qlinear.ScaleF32, qlinear.ActivationDyn8},
		{"int4 channel dyn8 per row", qlinear.FormatInt4, qlinear.PerChannel, 0, true, qlinear.ScaleF16, qlinear.ActivationDyn8PerRow},
	}
	dev := must(qlinear.NewDevice(2))(t)
	defer dev.Close()
	const rows = 3
	for _, rc := range recipes {
		for _, shape := range [][2]int{{48, 64}, {17, 33}} {
			n, k := shape[0], shape[1]
			t.Run(rc.name, func(t *testing.T) {
				w, b, x := randomVec(n*k, 0.3, uint64(10+n)), randomVec(n, 0.1, uint64(20+n)), randomVec(rows*k, 1, uint64(30+n))
				cfg := must(qlinear.NewQuantConfigInt8())(t)
				defer cfg.Close()
				for _, err := range []error{cfg.SetFormat(rc.format), cfg.SetGranularity(rc.granularity, rc.group), cfg.SetSymmetric(rc.symmetric),
					cfg.SetScaleDtype(rc.dtype), cfg.SetActivationMode(rc.mode)} {
					if err != nil {
						t.Fatal(err)
					}
				}
				q := must(qlinear.Quantize(dev, w, b, k, n, cfg))(t)
				defer q.Close()
				bits := 4
				if rc.format == qlinear.FormatInt8 {
					bits = 8
				}
				if q.InFeatures() != k || q.OutFeatures() != n || q.Bits() != bits || q.Format() != rc.format || q.Granularity() != rc.granularity ||
					q.GroupSize() != rc.group || q.Symmetric() != rc.symmetric || q.ScaleDtype() != rc.dtype ||
					q.ActivationMode() != rc.mode {
					t.Errorf("accessors disagree with the recipe: %+v", q)
				}
				saved := 0
				if 4*n*k > q.WeightBytes() {
					saved = 4*n*k - q.WeightBytes()
				}
				if q.WeightBytes() <= 0 || q.MemorySaved() != saved {
					t.Errorf("WeightBytes %d, MemorySaved %d", q.WeightBytes(), q.MemorySaved())
				}
				y := must(q.Forward(x, rows))(t)
				checkReference(t, q, x, rows, b, y)
				y2 := make([]float32, rows*n)
				if err := q.ForwardInto(x, rows, y2); err != nil || !sameBits(y, y2) {
					t.Errorf("ForwardInto differs: %v", err)
				}

				p := must(q.Parts())(t)
				cl, sl, err := qlinear.LayoutLengths(k, n, p.Bits, p.Granularity, p.GroupSize)
				if err != nil || cl != len(p.Codes) || sl != len(p.Scales) {
					t.Errorf("LayoutLengths = %d, %d, %v", cl, sl, err)
				}
				if (len(p.ZeroPoints) == 0) != rc.symmetric {
					t.Errorf("%d zero points", len(p.ZeroPoints))
				}
				if (len(p.Codebook) == 16) != (rc.format == qlinear.FormatCb4) {
					t.Errorf("%d codebook levels", len(p.Codebook))
				}
				p.Bias = b
				q2 := must(qlinear.FromParts(dev, p))(t)
				defer q2.Close()
				if y3 := must(q2.Forward(x, rows))(t); !sameBits(y, y3) {
					t.Error("layer rebuilt from parts differs")
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	const n, k, rows = 17, 33, 2
	dev := must(qlinear.NewDevice(1))(t)
	defer dev.Close()
	w, b, x := randomVec(n*k, 0.3, 7), randomVec(n, 0.1, 8), randomVec(rows*k, 1, 9)
	c4 := must(qlinear.NewQuantConfigInt4())(t)
	defer c4.Close()

	_, err := qlinear.Quantize(dev, w[:len(w)-1], nil, k, n, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "short weights")
	_, err = qlinear.Quantize(dev, w, nil, k+1, n, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "wrong in")
	_, err = qlinear.Quantize(dev, w, nil, k, 0, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "zero out")
	_, err = qlinear.Quantize(dev, w, b[:n-1], k, n, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "short bias")
	_, err = qlinear.Quantize(dev, w, nil, k, -n, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "negative out")
	_, err = qlinear.Quantize(dev, w, nil, math.MaxInt, math.MaxInt, c4)
	wantErr(t, err, qlinear.ErrInvalidArgument, "overflowing shape")
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		wb := append([]float32(nil), w...)
		wb[3] = bad
		_, err = qlinear.Quantize(dev, wb, nil, k, n, c4)
		wantErr(t, err, qlinear.ErrInvalidArgument, "non-finite weight")
		bb := append([]float32(nil), b...)
		bb[1] = bad
		_, err = qlinear.Quantize(dev, w, bb, k, n, c4)
		wantErr(t, err, qlinear.ErrInvalidArgument, "non-finite bias")
	}
	_, err = qlinear.Quantize(dev, nil, nil, k, n, c4)
	wantErr(t, err, qlinear.ErrNullArgument, "nil weights")

	closedDev := must(qlinear.NewDevice(1))(t)
	closedDev.Close()
	_, err = qlinear.Quantize(closedDev, w, nil, k, n, c4)
	wantErr(t, err, qlinear.ErrNullArgument, "closed device")
	closedCfg := must(qlinear.NewQuantConfigInt8())(t)
	closedCfg.Close()
	_, err = qlinear.Quantize(dev, w, nil, k, n, closedCfg)
	wantErr(t, err, qlinear.ErrNullArgument, "closed config")

	q := must(qlinear.Quantize(dev, w, b, k, n, c4))(t)
	_, err = q.Forward(x, 3)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward wrong rows")
	_, err = q.Forward(x, 0)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward zero rows")
	_, err = q.Forward(x, -1)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward negative rows")
	_, err = q.Forward(x[:len(x)-1], rows)
	wantErr(t, err, qlinear.ErrInvalidArgument, "Forward short x")
	_, err = q.Forward(nil, rows)
	wantErr(t, err, qlinear.ErrNullArgument, "Forward nil x")
	y := make([]float32, rows*n)
	for i := range y {
		y[i] = 777
	}
	wantErr(t, q.ForwardInto(x, rows, y[:len(y)-1]), qlinear.ErrInvalidArgument, "ForwardInto short y")
	wantErr(t, q.ForwardInto(x, rows, nil), qlinear.ErrNullArgument, "ForwardInto nil y")
	for _, v := range y {
		if v != 777 {
			t.Fatal("y written by a failed forward")
		}
	}

	parts := must(q.Parts())(t)
	for name, mutate := range map[string]func(p *qlinear.Parts){
		"bits 5":       func(p *qlinear.Parts) { p.Bits = 5 },
		"group 48":     func(p *qlinear.Parts) { p.GroupSize = 48 },
		"short codes":  func(p *qlinear.Parts) { p.Codes = p.Codes[:len(p.Codes)-1] },
		"NaN scale":    func(p *qlinear.Parts) { p.Scales[1] = float32(math.NaN()) },
		"short bias":   func(p *qlinear.Parts) { p.Bias = b[:n-1] },
		"negative out": func(p *qlinear.Parts) { p.Out = -1 },
	} {
		p := *parts
		p.Scales = append([]float32(nil), parts.Scales...)
		mutate(&p)
		_, err := qlinear.FromParts(dev, &p)
		wantErr(t, err, qlinear.ErrInvalidArgument, "FromParts "+name)
	}
	p := *parts
	p.Codes = nil
	_, err = qlinear.FromParts(dev, &p)
	wantErr(t, err, qlinear.ErrNullArgument, "FromParts nil codes")
	_, _, err = qlinear.LayoutLengths(k, n, 3, qlinear.Group, 32)
	wantErr(t, err, qlinear.ErrInvalidArgument, "LayoutLengths bits 3")

	// Close is idempotent; a closed layer reports ErrNullArgument.
	q.Close()
	q.Close()
	_, err = q.Forward(x, rows)
	wantErr(t, err, qlinear.ErrNullArgument, "closed layer")
	_, err = q.Parts()
	wantErr(t, err, qlinear.ErrNullArgument, "Parts of closed layer")

	var qe *qlinear.Error
	if !errors.As(err, &qe) || qe.Status != qlinear.StatusNullArgument || errors.Is(err, qlinear.ErrInvalidArgument) {
		t.Errorf("error type: %#v", err)
	}
}

func TestQuantizeLinearOutlivesDevice(t *testing.T) {
	const n, k = 48, 64
	dev := must(qlinear.NewDevice(1))(t)
	w, b, x := randomVec(n*k, 0.3, 4), randomVec(n, 0.1, 5), randomVec(k, 1, 6)
	l := must(qlinear.NewLinear(dev, w, b, k, n))(t)
	cfg := must(qlinear.NewQuantConfigInt8())(t)
	q := must(qlinear.QuantizeLinear(l, cfg))(t)
	dev.Close()
	l.Close()
	cfg.Close()
	y := must(q.Forward(x, 1))(t)
	checkReference(t, q, x, 1, b, y)
	q.Close()
	_, err := qlinear.QuantizeLinear(l, cfg)
	wantErr(t, err, qlinear.ErrNullArgument, "closed linear")
}

// Handles dropped without Close are freed by their finalizers.
func TestFinalizers(t *testing.T) {
	dev := must(qlinear.NewDevice(1))(t)
	defer dev.Close()
	w := randomVec(64*64, 0.3, 15)
	for i := 0; i < 50; i++ {
		cfg := must(qlinear.NewQuantConfigInt4())(t)
		must(qlinear.Quantize(dev, w, nil, 64, 64, cfg))(t)
		must(qlinear.NewDevice(1))(t)
	}
	runtime.GC()
	runtime.GC()
}

func TestConcurrentForwardIsBitIdentical(t *testing.T) {
	for _, threads := range []int{1, 2} {
		dev := must(qlinear.NewDevice(threads))(t)
		const n, k, rows = 96, 160, 5
		w, x := randomVec(n*k, 0.3, 13), randomVec(rows*k, 1, 14)
		cfg := must(qlinear.NewQuantConfigInt4())(t)
		q := must(qlinear.Quantize(dev, w, nil, k, n, cfg))(t)
		want := must(q.Forward(x, rows))(t)
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		var mu sync.Mutex
		mismatches := 0
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				y := make([]float32, rows*n)
				for it := 0; it < 30; it++ {
					var err error
					if (g+it)%2 == 0 {
						err = q.ForwardInto(x, rows, y)
					} else {
						y, err = q.Forward(x, rows)
					}
					if err != nil {
						errs <- err
						return
					}
					if !sameBits(y, want) {
						mu.Lock()
						mismatches++
						mu.Unlock()
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if mismatches != 0 {
			t.Errorf("device threads %d: %d results differ from the single-goroutine one", threads, mismatches)
		}
		q.Close()
		cfg.Close()
		dev.Close()
	}
}

// BenchmarkForward64x64 measures one batch-1 forward of a 64×64 INT8 layer on an inline
// device: mostly the cgo call overhead.
func BenchmarkForward64x64(b *testing.B) {
	dev := must(qlinear.NewDevice(1))(b)
	defer dev.Close()
	cfg := must(qlinear.NewQuantConfigInt8())(b)
	defer cfg.Close()
	q := must(qlinear.Quantize(dev, randomVec(64*64, 0.3, 1), nil, 64, 64, cfg))(b)
	defer q.Close()
	x, y := randomVec(64, 1, 2), make([]float32, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.ForwardInto(x, 1, y); err != nil {
			b.Fatal(err)
		}
	}
}

func TestModelSaveLoad(t *testing.T) {
	dev := must(qlinear.NewDevice(1))(t)
	defer dev.Close()
	cfg := must(qlinear.NewQuantConfigInt4())(t)
	defer cfg.Close()
	const in, out, rows = 64, 12, 2
	w := randomVec(in*out, 0.3, 11)
	x := randomVec(in*rows, 1, 12)
	a := must(qlinear.Quantize(dev, w, randomVec(out, 0.1, 13), in, out, cfg))(t)
	defer a.Close()
	b := must(qlinear.Quantize(dev, w, nil, in, out, cfg))(t)
	defer b.Close()
	path := t.TempDir() + "/m.qlin"
	if err := qlinear.SaveModel(path, []string{"a", "b"}, []*qlinear.QuantizedLinear{a, b}); err != nil {
		t.Fatal(err)
	}
	want := must(a.Forward(x, rows))(t)

	m := must(qlinear.LoadModel(path, dev))(t)
	if names := m.Names(); len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Fatalf("names %v", names)
	}
	la := must(m.Layer("a"))(t)
	defer la.Close()
	m.Close() // the layer outlives the model
	if got := must(la.Forward(x, rows))(t); !sameBits(got, want) {
		t.Fatal("loaded layer differs")
	}

	data := must(os.ReadFile(path))(t)
	// SaveModelBytes gives the file's bytes, and they load back bit for bit.
	mem := must(qlinear.SaveModelBytes([]string{"a", "b"}, []*qlinear.QuantizedLinear{a, b}))(t)
	if !bytes.Equal(mem, data) {
		t.Fatalf("SaveModelBytes: %d bytes differ from the %d-byte file", len(mem), len(data))
	}
	if _, err := qlinear.SaveModelBytes([]string{"a"}, nil); !errors.Is(err, qlinear.ErrInvalidArgument) {
		t.Fatalf("mismatched lists: %v", err)
	}
	mb := must(qlinear.LoadModelBytes(data, dev))(t)
	defer mb.Close()
	if _, err := mb.Layer("missing"); !errors.Is(err, qlinear.ErrInvalidArgument) {
		t.Fatalf("missing layer: %v", err)
	}
	data[len(data)-1] ^= 1
	if _, err := qlinear.LoadModelBytes(data, dev); !errors.Is(err, qlinear.ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := qlinear.LoadModelBytes(nil, dev); !errors.Is(err, qlinear.ErrCorrupt) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := qlinear.LoadModel(path+".missing", dev); !errors.Is(err, qlinear.ErrIO) {
		t.Fatalf("missing file: %v", err)
	}
}
