// Model: named quantized layers loaded from or saved to a qlinear file.

package qlinear

/*
#cgo pkg-config: qlinear
#include <stdlib.h>
#include "qlinear.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Model holds named quantized layers loaded from a qlinear file (docs/FORMAT.md). Layers
// taken from it share its weights and stay valid after the model is closed.
type Model struct {
	ptr *C.qlinear_model
}

func newModel(p *C.qlinear_model) *Model {
	m := &Model{ptr: p}
	runtime.SetFinalizer(m, (*Model).Close)
	return m
}

// LoadModel loads a qlinear file for dev. A missing file fails with ErrIO, a malformed one
// with ErrCorrupt.
func LoadModel(path string, dev *Device) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var p *C.qlinear_model
	err := call(func() C.qlinear_status { return C.qlinear_model_load_file(cpath, dev.ptr, &p) })
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	return newModel(p), nil
}

// LoadModelBytes loads a qlinear file held in data; data is not kept after the call.
func LoadModelBytes(data []byte, dev *Device) (*Model, error) {
	var empty C.uint8_t
	ptr := &empty
	if len(data) > 0 {
		ptr = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	var p *C.qlinear_model
	err := call(func() C.qlinear_status {
		return C.qlinear_model_load_memory(ptr, C.size_t(len(data)), dev.ptr, &p)
	})
	runtime.KeepAlive(data)
	runtime.KeepAlive(dev)
	if err != nil {
		return nil, err
	}
	return newModel(p), nil
}

// withLayerArrays calls f with C arrays of the layers' handles and names (C memory: they
// hold C pointers only), after checking the lists.
func withLayerArrays(names []string, layers []*QuantizedLinear, f func(**C.qlinear_quantized_linear, **C.char, C.size_t) C.qlinear_status) error {
	if len(names) != len(layers) {
		return invalid("%d names for %d layers", len(names), len(layers))
	}
	if len(layers) == 0 {
		return invalid("no layers to save")
	}
	n := C.size_t(len(layers))
	hs := unsafe.Slice((**C.qlinear_quantized_linear)(C.malloc(n*C.size_t(unsafe.Sizeof(uintptr(0))))), len(layers))
	cs := unsafe.Slice((**C.char)(C.malloc(n*C.size_t(unsafe.Sizeof(uintptr(0))))), len(layers))
	defer C.free(unsafe.Pointer(&hs[0]))
	defer C.free(unsafe.Pointer(&cs[0]))
	for i := range layers {
		hs[i] = nil
		if layers[i] != nil {
			hs[i] = layers[i].ptr
		}
		cs[i] = C.CString(names[i])
	}
	defer func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}()
	err := call(func() C.qlinear_status {
		return f((**C.qlinear_quantized_linear)(unsafe.Pointer(&hs[0])), (**C.char)(unsafe.Pointer(&cs[0])), n)
	})
	runtime.KeepAlive(layers)
	return err
}

// SaveModel writes layers[i] under names[i], in order, to path. The file is written crash-safely:
// path holds either its old contents or the complete new file, never a torn one.
func SaveModel(path string, names []string, layers []*QuantizedLinear) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return withLayerArrays(names, layers, func(hs **C.qlinear_quantized_linear, cs **C.char, n C.size_t) C.qlinear_status {
		return C.qlinear_model_save_file(cpath, hs, cs, n)
	})
}

// SaveModelBytes returns the bytes SaveModel would write (for hosts that pack assets into
// their own archives); LoadModelBytes reads them back bit for bit.
func SaveModelBytes(names []string, layers []*QuantizedLinear) ([]byte, error) {
	var ptr *C.uint8_t
	var n C.size_t
	err := withLayerArrays(names, layers, func(hs **C.qlinear_quantized_linear, cs **C.char, count C.size_t) C.qlinear_status {
		return C.qlinear_model_save_memory(hs, cs, count, &ptr, &n)
	})
	if err != nil {
		return nil, err
	}
	defer C.qlinear_bytes_free(ptr, n)
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(ptr)), int(n))...), nil
}

// Len is the number of layers.
func (m *Model) Len() int {
	var n C.size_t
	if err := call(func() C.qlinear_status { return C.qlinear_model_layer_count(m.ptr, &n) }); err != nil {
		return 0
	}
	runtime.KeepAlive(m)
	return int(n)
}

// Names lists the layer names in file order.
func (m *Model) Names() []string {
	names := make([]string, 0, m.Len())
	for i := 0; i < cap(names); i++ {
		var c *C.char
		if err := call(func() C.qlinear_status { return C.qlinear_model_layer_name(m.ptr, C.size_t(i), &c) }); err != nil {
			break
		}
		names = append(names, C.GoString(c))
	}
	runtime.KeepAlive(m)
	return names
}

// Layer returns the layer called name as a new QuantizedLinear (sharing the model's
// weights; Close it independently). An unknown name fails with ErrInvalidArgument.
func (m *Model) Layer(name string) (*QuantizedLinear, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var p *C.qlinear_quantized_linear
	err := call(func() C.qlinear_status { return C.qlinear_model_get_layer(m.ptr, cname, &p) })
	runtime.KeepAlive(m)
	if err != nil {
		return nil, err
	}
	return newQuantized(p)
}

// Close frees the model; layers taken from it stay valid. Close is idempotent.
func (m *Model) Close() error {
	if m.ptr != nil {
		C.qlinear_model_free(m.ptr)
		m.ptr = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}
