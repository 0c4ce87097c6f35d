// QuantConfig: the quantization recipe handle.

package qlinear

/*
#cgo pkg-config: qlinear
#include "qlinear.h"
*/
import "C"

import (
	"runtime"
)

// QuantConfig is a quantization recipe: bits, scale granularity, symmetric or not, scale
// storage type and activation mode.
type QuantConfig struct {
	ptr *C.qlinear_quant_config
}

// NewQuantConfig creates the default recipe for 8 or 4 bits (NewQuantConfigInt8 or
// NewQuantConfigInt4); other widths fail with ErrInvalidArgument.
func NewQuantConfig(bits int) (*QuantConfig, error) {
	switch bits {
	case 8:
		return NewQuantConfigInt8()
	case 4:
		return NewQuantConfigInt4()
	}
	return nil, invalid("bits must be 4 or 8, got %d", bits)
}

// NewQuantConfigInt8 creates the INT8 default recipe: symmetric, groups of 32, f16 scales
// chosen by an error search, exact activations.
func NewQuantConfigInt8() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int8(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

// NewQuantConfigInt4 creates the 4-bit default recipe: the cb4 codebook, groups of 32, f16
// scales chosen by an error search with a least-squares refit, exact activations.
func NewQuantConfigInt4() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int4(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

// NewQuantConfigInt4Uniform creates the uniform 4-bit recipe (integer codes −8..7),
// otherwise as NewQuantConfigInt4.
func NewQuantConfigInt4Uniform() (*QuantConfig, error) {
	var p *C.qlinear_quant_config
	if err := call(func() C.qlinear_status { return C.qlinear_quant_config_create_int4_uniform(&p) }); err != nil {
		return nil, err
	}
	return newQuantConfig(p), nil
}

func newQuantConfig(p *C.qlinear_quant_config) *QuantConfig {
	c := &QuantConfig{ptr: p}
	runtime.SetFinalizer(c, (*QuantConfig).Close)
	return c
}

func (c *QuantConfig) set(f func(*C.qlinear_quant_config) C.qlinear_status) error {
	err := call(func() C.qlinear_status { return f(c.ptr) })
	runtime.KeepAlive(c)
	return err
}

// SetFormat sets the weight format; FormatCb4 on an asymmetric config fails with
// ErrInvalidArgument.
func (c *QuantConfig) SetFormat(f WeightFormat) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_format(p, C.uint32_t(f))
	})
}

// SetBits sets the code width: 8 (FormatInt8) or 4 (the uniform FormatInt4).
func (c *QuantConfig) SetBits(bits int) error {
	if bits < 0 || bits > 255 {
		return invalid("bits must be 4 or 8, got %d", bits)
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_bits(p, C.uint32_t(bits))
	})
}

// SetGroupSize sets group-wise scales with groupSize inputs per group (a power of two from
// 32 to 1024), or per-channel scales when groupSize is 0.
func (c *QuantConfig) SetGroupSize(groupSize int) error {
	n, err := size("group size", groupSize)
	if err != nil {
		return err
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_group_size(p, n)
	})
}

// SetGranularity sets the granularity; groupSize is used only for Group.
func (c *QuantConfig) SetGranularity(g Granularity, groupSize int) error {
	n, err := size("group size", groupSize)
	if err != nil {
		return err
	}
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_granularity(p, C.uint32_t(g), n)
	})
}

// SetSymmetric chooses symmetric (no zero points) or asymmetric quantization.
func (c *QuantConfig) SetSymmetric(symmetric bool) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_symmetric(p, C.bool(symmetric))
	})
}

// SetActivationMode sets what Forward does with activations.
func (c *QuantConfig) SetActivationMode(mode ActivationMode) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_activation_mode(p, C.uint32_t(mode))
	})
}

// SetScaleDtype sets how scales are stored.
func (c *QuantConfig) SetScaleDtype(dtype ScaleDtype) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_scale_dtype(p, C.uint32_t(dtype))
	})
}

// SetSearch turns the squared-error scale search on (the default) or off.
func (c *QuantConfig) SetSearch(search bool) error {
	return c.set(func(p *C.qlinear_quant_config) C.qlinear_status {
		return C.qlinear_quant_config_set_search(p, C.bool(search))
	})
}

// Close frees the config (layers do not reference it). Close is idempotent.
func (c *QuantConfig) Close() error {
	if c.ptr != nil {
		C.qlinear_quant_config_free(c.ptr)
		c.ptr = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}
