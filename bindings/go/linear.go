// Linear: the float32 layer handle.

package qlinear

/*
#cgo pkg-config: qlinear
#include "qlinear.h"
*/
import "C"

import (
	"runtime"
)

// Linear is a float32 linear layer y = x·Wᵀ + b.
type Linear struct {
	ptr     *C.qlinear_linear
	in, out int
}

// NewLinear creates a layer from weights [out][in] (row-major, out·in values) and an
// optional bias of out values (nil for none). The values are copied.
func NewLinear(dev *Device, weights []float32, bias []float32, in, out int) (*Linear, error) {
	cin, err := size("in", in)
	if err != nil {
		return nil, err
	}
	cout, err := size("out", out)
	if err != nil {
		return nil, err
	}
	var p *C.qlinear_linear
	err = call(func() C.qlinear_status {
		return C.qlinear_linear_create(dev.ptr, floatPtr(weights), C.size_t(len(weights)), cout, cin,
			floatPtr(bias), C.size_t(len(bias)), &p)
	})
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	l := &Linear{ptr: p, in: in, out: out}
	runtime.SetFinalizer(l, (*Linear).Close)
	return l, nil
}

// InFeatures is the number of inputs (columns of W).
func (l *Linear) InFeatures() int { return l.in }

// OutFeatures is the number of outputs (rows of W).
func (l *Linear) OutFeatures() int { return l.out }

// Forward computes y = x·Wᵀ + b for rows rows of x (rows·in values) into a new slice of
// rows·out values.
func (l *Linear) Forward(x []float32, rows int) ([]float32, error) {
	return forwardNew(x, rows, l.in, l.out, l.ForwardInto)
}

// ForwardInto writes rows·out values into y, which is written only on success.
func (l *Linear) ForwardInto(x []float32, rows int, y []float32) error {
	r, err := size("rows", rows)
	if err != nil {
		return err
	}
	err = linearForward(l.ptr, x, r, y)
	runtime.KeepAlive(l)
	return err
}

// Close frees the layer; quantized layers made from it stay valid. Close is idempotent.
func (l *Linear) Close() error {
	if l.ptr != nil {
		C.qlinear_linear_free(l.ptr)
		l.ptr = nil
		runtime.SetFinalizer(l, nil)
	}
	return nil
}

// outputFor allocates the output of a forward when the lengths fit; otherwise it returns a
// one-element slice so that the C call reports the error (its status and message).
func outputFor(rows, in, out, xLen int) ([]float32, error) {
	if rows < 0 {
		return nil, invalid("rows must not be negative, got %d", rows)
	}
	if rows > 0 && in > 0 && out > 0 && xLen/in == rows && xLen%in == 0 {
		return make([]float32, rows*out), nil
	}
	return make([]float32, 1), nil
}
