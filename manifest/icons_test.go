package manifest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func decodeIcon(t *testing.T, name string) image.Image {
	t.Helper()
	pkg, err := Build(Options{AppID: testAppID})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_, files := readPackage(t, pkg)
	data, ok := files[name]
	if !ok {
		t.Fatalf("app package has no %s", name)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode %s as PNG: %v", name, err)
	}
	return img
}

func nrgbaAt(img image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

func TestIconSizes(t *testing.T) {
	tests := []struct {
		file string
		size int
	}{
		{colorFile, 192},
		{outlineFile, 32},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			img := decodeIcon(t, tt.file)

			b := img.Bounds()
			if b.Min != (image.Point{}) || b.Dx() != tt.size || b.Dy() != tt.size {
				t.Errorf("%s bounds = %v, want %d×%d from the origin", tt.file, b, tt.size, tt.size)
			}
		})
	}
}

func TestOutlineIconWhiteOnTransparent(t *testing.T) {
	img := decodeIcon(t, outlineFile)
	b := img.Bounds()

	var visible, nonWhite int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := nrgbaAt(img, x, y)
			if c.A == 0 {
				continue
			}
			visible++
			if c.R != 0xFF || c.G != 0xFF || c.B != 0xFF {
				nonWhite++
				if nonWhite <= 3 {
					t.Errorf("pixel (%d,%d) = %v, want white with any alpha or fully transparent", x, y, c)
				}
			}
		}
	}
	if nonWhite > 0 {
		t.Errorf("%d visible pixels are not white", nonWhite)
	}

	// The strokes must be a drawing, not an empty or filled square.
	total := b.Dx() * b.Dy()
	if visible < total/10 || visible > total/2 {
		t.Errorf("%d of %d pixels are visible, want between a tenth and a half", visible, total)
	}
}

func TestOutlineIconTransparentBackground(t *testing.T) {
	img := decodeIcon(t, outlineFile)
	b := img.Bounds()

	corners := []image.Point{
		{b.Min.X, b.Min.Y}, {b.Max.X - 1, b.Min.Y},
		{b.Min.X, b.Max.Y - 1}, {b.Max.X - 1, b.Max.Y - 1},
		{b.Min.X + b.Dx()/2, b.Min.Y}, {b.Min.X, b.Min.Y + b.Dy()/2},
	}
	for _, p := range corners {
		t.Run(fmt.Sprintf("%d,%d", p.X, p.Y), func(t *testing.T) {
			if c := nrgbaAt(img, p.X, p.Y); c.A != 0 {
				t.Errorf("pixel (%d,%d) = %v, want fully transparent", p.X, p.Y, c)
			}
		})
	}
}

func TestColorIcon(t *testing.T) {
	img := decodeIcon(t, colorFile)
	b := img.Bounds()
	want := color.NRGBA{accent.R, accent.G, accent.B, 0xFF}

	t.Run("solid accent background", func(t *testing.T) {
		for _, p := range []image.Point{{0, 0}, {b.Max.X - 1, 0}, {0, b.Max.Y - 1}, {b.Max.X - 1, b.Max.Y - 1}} {
			if c := nrgbaAt(img, p.X, p.Y); c != want {
				t.Errorf("pixel (%d,%d) = %v, want the accent colour %v", p.X, p.Y, c, want)
			}
		}
	})

	t.Run("opaque", func(t *testing.T) {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if c := nrgbaAt(img, x, y); c.A != 0xFF {
					t.Fatalf("pixel (%d,%d) = %v, want opaque", x, y, c)
				}
			}
		}
	})

	t.Run("white cylinder top", func(t *testing.T) {
		if c := nrgbaAt(img, b.Dx()/2, 45); c != (color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}) {
			t.Errorf("pixel at the centre of the cylinder's top = %v, want white", c)
		}
	})
}

func TestIconAccentMatchesDefault(t *testing.T) {
	got := fmt.Sprintf("#%02X%02X%02X", accent.R, accent.G, accent.B)
	if got != DefaultAccentColor {
		t.Errorf("icon background %s differs from DefaultAccentColor %s", got, DefaultAccentColor)
	}
}
