// Device: the CPU device handle.

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

// Device is a CPU device: ISA path, worker threads and allocator.
type Device struct {
	ptr     *C.qlinear_device
	threads int
	isa     string
}

// NewDevice creates a device owning threads worker threads (0 = one per core, 1 = run on the
// calling thread); the ISA comes from the QLINEAR_ISA environment variable or is the best
// available.
func NewDevice(threads int) (*Device, error) {
	n, err := size("threads", threads)
	if err != nil {
		return nil, err
	}
	var p *C.qlinear_device
	if err := call(func() C.qlinear_status { return C.qlinear_device_create(n, &p) }); err != nil {
		return nil, err
	}
	return newDevice(p)
}

// NewDeviceWithISA is NewDevice forcing the ISA path: "scalar", "avx2", "avx512" or "auto".
// An unknown name fails with ErrInvalidArgument, a path this CPU lacks with ErrUnsupported.
func NewDeviceWithISA(threads int, isa string) (*Device, error) {
	n, err := size("threads", threads)
	if err != nil {
		return nil, err
	}
	cisa := C.CString(isa)
	defer C.free(unsafe.Pointer(cisa))
	var p *C.qlinear_device
	if err := call(func() C.qlinear_status { return C.qlinear_device_create_with_isa(n, cisa, &p) }); err != nil {
		return nil, err
	}
	return newDevice(p)
}

func newDevice(p *C.qlinear_device) (*Device, error) {
	d := &Device{ptr: p}
	runtime.SetFinalizer(d, (*Device).Close)
	var n C.size_t
	var name *C.char
	if err := call(func() C.qlinear_status { return C.qlinear_device_threads(p, &n) }); err != nil {
		d.Close()
		return nil, err
	}
	if err := call(func() C.qlinear_status { return C.qlinear_device_isa(p, &name) }); err != nil {
		d.Close()
		return nil, err
	}
	d.threads, d.isa = int(n), C.GoString(name)
	return d, nil
}

// ISAAvailable reports whether this CPU can run the ISA path isa.
func ISAAvailable(isa string) (bool, error) {
	cisa := C.CString(isa)
	defer C.free(unsafe.Pointer(cisa))
	var ok C.bool
	err := call(func() C.qlinear_status { return C.qlinear_isa_is_available(cisa, &ok) })
	return bool(ok), err
}

// Threads is the number of threads that may run one call's tasks at once.
func (d *Device) Threads() int { return d.threads }

// ISA is the ISA path the device runs: "scalar", "avx2" or "avx512".
func (d *Device) ISA() string { return d.isa }

// Close frees the device. Layers created on it stay usable. Close is idempotent.
func (d *Device) Close() error {
	if d.ptr != nil {
		C.qlinear_device_free(d.ptr)
		d.ptr = nil
		runtime.SetFinalizer(d, nil)
	}
	return nil
}
