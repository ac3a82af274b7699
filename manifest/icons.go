package manifest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"sync"
)

// Icon sizes in pixels, as the manifest schema describes icons.color and
// icons.outline.
const (
	colorIconSize   = 192
	outlineIconSize = 32
)

// samplesPerSide is the supersampling grid of one pixel: 4×4 samples give 17
// coverage levels, which smooth the edges of curves even at 32 pixels.
const samplesPerSide = 4

var (
	// accent is DefaultAccentColor as a colour value. The icons keep it when
	// Options.AccentColor changes, so they are rendered once per process.
	accent = color.RGBA{0x5B, 0x5F, 0xC7, 0xFF}
	// usedFill tints the tiers of the colour icon's cylinder that represent
	// used storage.
	usedFill = color.RGBA{0xC5, 0xC7, 0xF2, 0xFF}
)

// iconSet contains the encoded icons, which do not depend on Options.
type iconSet struct {
	color   []byte
	outline []byte
}

var renderIcons = sync.OnceValues(func() (iconSet, error) {
	colorPNG, err := encodePNG(colorIcon())
	if err != nil {
		return iconSet{}, fmt.Errorf("encode %s: %w", colorFile, err)
	}
	outlinePNG, err := encodePNG(outlineIcon())
	if err != nil {
		return iconSet{}, fmt.Errorf("encode %s: %w", outlineFile, err)
	}
	return iconSet{color: colorPNG, outline: outlinePNG}, nil
})

// iconPNGs returns the encoded icons. Callers must not modify the slices,
// which every Build shares.
func iconPNGs() (colorPNG, outlinePNG []byte, err error) {
	icons, err := renderIcons()
	return icons.color, icons.outline, err
}

// colorIcon draws a white database cylinder of three tiers on the accent
// colour. The two lower tiers are tinted to show storage in use.
func colorIcon() *image.RGBA {
	const (
		cx      = 96.0
		rx      = 50.0
		ry      = 15.0
		top     = 52.0
		tier    = 30.0
		bottom  = top + 3*tier
		gapHalf = 3.0
	)

	img := image.NewRGBA(image.Rect(0, 0, colorIconSize, colorIconSize))
	draw.Draw(img, img.Bounds(), image.NewUniform(accent), image.Point{}, draw.Src)

	body := union(ellipse(cx, top, rx, ry), rect(cx-rx, top, cx+rx, bottom), ellipse(cx, bottom, rx, ry))
	usedTiers := intersect(body, belowArc(cx, top+tier, rx, ry))
	var gaps []shape
	for i := range 3 {
		y := top + float64(i)*tier
		gaps = append(gaps, lowerHalf(y, ring(cx, y, rx, ry, gapHalf)))
	}

	paint(img, body, color.White)
	paint(img, usedTiers, usedFill)
	paint(img, intersect(body, union(gaps...)), accent)
	return img
}

// outlineIcon draws the same cylinder as two-pixel white strokes on a
// transparent background. The manifest schema asks for a transparent PNG with
// a white outline, so every pixel is white and only alpha varies.
func outlineIcon() *image.NRGBA {
	const (
		cx     = 16.0
		rx     = 10.0
		ry     = 3.5
		top    = 8.5
		middle = 16.5
		bottom = 24.5
		half   = 1.0
	)

	strokes := union(
		ring(cx, top, rx, ry, half),
		rect(cx-rx-half, top, cx-rx+half, bottom),
		rect(cx+rx-half, top, cx+rx+half, bottom),
		lowerHalf(middle, ring(cx, middle, rx, ry, half)),
		lowerHalf(bottom, ring(cx, bottom, rx, ry, half)),
	)
	coverage := mask(outlineIconSize, strokes)

	img := image.NewNRGBA(coverage.Bounds())
	for i, a := range coverage.Pix {
		if a == 0 {
			continue
		}
		img.Pix[4*i+0] = 0xFF
		img.Pix[4*i+1] = 0xFF
		img.Pix[4*i+2] = 0xFF
		img.Pix[4*i+3] = a
	}
	return img
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// shape reports whether a point lies inside it. Coordinates are in pixels
// from the top-left corner of the icon.
type shape func(x, y float64) bool

func ellipse(cx, cy, rx, ry float64) shape {
	return func(x, y float64) bool {
		dx, dy := (x-cx)/rx, (y-cy)/ry
		return dx*dx+dy*dy <= 1
	}
}

// ring is the outline of an ellipse, about 2*half pixels thick.
func ring(cx, cy, rx, ry, half float64) shape {
	return minus(ellipse(cx, cy, rx+half, ry+half), ellipse(cx, cy, rx-half, ry-half))
}

func rect(x0, y0, x1, y1 float64) shape {
	return func(x, y float64) bool {
		return x >= x0 && x < x1 && y >= y0 && y < y1
	}
}

// lowerHalf keeps the part of s at or below the line y = y0, which turns an
// ellipse's outline into the front edge of a cylinder's tier.
func lowerHalf(y0 float64, s shape) shape {
	return func(x, y float64) bool {
		return y >= y0 && s(x, y)
	}
}

// belowArc is the region under the lower half of the ellipse's outline.
// Outside the ellipse's width it is the region under the centre line.
func belowArc(cx, cy, rx, ry float64) shape {
	return func(x, y float64) bool {
		dx := (x - cx) / rx
		edge := cy
		if dx*dx < 1 {
			edge += ry * math.Sqrt(1-dx*dx)
		}
		return y >= edge
	}
}

func union(shapes ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range shapes {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}

func intersect(a, b shape) shape {
	return func(x, y float64) bool {
		return a(x, y) && b(x, y)
	}
}

func minus(a, b shape) shape {
	return func(x, y float64) bool {
		return a(x, y) && !b(x, y)
	}
}

// mask rasterises s into an alpha mask that stores the covered fraction of
// each pixel, sampled on a samplesPerSide × samplesPerSide grid.
func mask(size int, s shape) *image.Alpha {
	const samples = samplesPerSide * samplesPerSide

	m := image.NewAlpha(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			inside := 0
			for sy := range samplesPerSide {
				for sx := range samplesPerSide {
					x := float64(px) + (float64(sx)+0.5)/samplesPerSide
					y := float64(py) + (float64(sy)+0.5)/samplesPerSide
					if s(x, y) {
						inside++
					}
				}
			}
			m.Pix[py*m.Stride+px] = uint8((inside*0xFF + samples/2) / samples)
		}
	}
	return m
}

// paint composites c over dst wherever s covers it, with anti-aliased edges.
func paint(dst *image.RGBA, s shape, c color.Color) {
	size := dst.Bounds().Dx()
	draw.DrawMask(dst, dst.Bounds(), image.NewUniform(c), image.Point{}, mask(size, s), image.Point{}, draw.Over)
}
