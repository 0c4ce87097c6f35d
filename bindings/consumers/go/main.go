// A Go program outside the qlinear package: it imports github.com/qlinear/qlinear-go (a
// replace directive points at the package's sources) and the package finds the C library
// with pkg-config (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig).
package main

import (
	"fmt"
	"math"
	"os"

	qlinear "github.com/qlinear/qlinear-go"
)

func main() {
	const in, out, rows = 64, 16, 2
	w, x := make([]float32, in*out), make([]float32, in*rows)
	for i := range w {
		w[i] = float32(math.Sin(0.3*float64(i))) * 0.1
	}
	for i := range x {
		x[i] = float32(math.Cos(0.2 * float64(i)))
	}
	dev, err := qlinear.NewDevice(1)
	check(err)
	defer dev.Close()
	cfg, err := qlinear.NewQuantConfigInt4()
	check(err)
	defer cfg.Close()
	layer, err := qlinear.Quantize(dev, w, nil, in, out, cfg)
	check(err)
	defer layer.Close()
	y, err := layer.Forward(x, rows)
	check(err)
	if len(y) != rows*out || layer.Format() != qlinear.FormatCb4 {
		check(fmt.Errorf("unexpected output: %d values, format %d", len(y), layer.Format()))
	}
	fmt.Printf("qlinear %s from Go: %d outputs, cb4 layer saves %d bytes\n", qlinear.Version(), len(y), layer.MemorySaved())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}
