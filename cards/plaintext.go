package cards

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// maxPlainTextDepth is the maximum container nesting that PlainText follows.
// The cards of this package nest two levels, so the limit only stops hostile
// or broken input.
const maxPlainTextDepth = 32

// columnGap separates the columns of a ColumnSet or Table row in PlainText.
const columnGap = "   "

// Errors that PlainText returns, wrapped.
var (
	ErrNotAdaptiveCard = errors.New("not an Adaptive Card")
	ErrCardTooDeep     = errors.New("card nests too deeply")
)

// PlainText renders card JSON, as a connector receives it, as readable text
// lines: TextBlock and RichTextBlock text, one line per ColumnSet or Table
// row with its columns side by side, "title: value" per Fact and "[title]"
// per action button. It removes the backslashes that Escape adds. raw may be
// the card itself or an attachment that carries it in "content". Elements
// with "isVisible": false and unknown elements without items are skipped.
func PlainText(raw []byte) (string, error) {
	var card map[string]any
	if err := json.Unmarshal(raw, &card); err != nil {
		return "", fmt.Errorf("decode card JSON: %w", err)
	}
	if content, ok := card["content"].(map[string]any); ok && card["contentType"] == ContentType {
		card = content
	}
	if cardType, _ := card["type"].(string); cardType != "AdaptiveCard" {
		return "", fmt.Errorf("read card of type %q: %w", cardType, ErrNotAdaptiveCard)
	}

	var lines []string
	if err := appendElements(&lines, card["body"], 0); err != nil {
		return "", err
	}
	appendActions(&lines, card["actions"])
	return strings.Join(lines, "\n"), nil
}

// appendElements appends the lines of each element in list, a JSON array.
func appendElements(lines *[]string, list any, depth int) error {
	if depth > maxPlainTextDepth {
		return fmt.Errorf("read element at depth %d: %w", depth, ErrCardTooDeep)
	}
	elements, _ := list.([]any)
	for _, e := range elements {
		element, ok := e.(map[string]any)
		if !ok || element["isVisible"] == false {
			continue
		}
		if err := appendElement(lines, element, depth); err != nil {
			return err
		}
	}
	return nil
}

func appendElement(lines *[]string, element map[string]any, depth int) error {
	switch element["type"] {
	case "TextBlock":
		appendText(lines, Unescape(stringField(element, "text")))
	case "RichTextBlock":
		// TextRun text is never Markdown, so it has no escapes to remove.
		appendText(lines, inlineText(element["inlines"]))
	case "FactSet":
		facts, _ := element["facts"].([]any)
		for _, f := range facts {
			fact, _ := f.(map[string]any)
			appendText(lines, Unescape(stringField(fact, "title"))+": "+Unescape(stringField(fact, "value")))
		}
	case "ActionSet":
		appendActions(lines, element["actions"])
	case "ColumnSet":
		columns, _ := element["columns"].([]any)
		return appendRow(lines, columns, depth)
	case "Table":
		rows, _ := element["rows"].([]any)
		for _, r := range rows {
			row, _ := r.(map[string]any)
			cells, _ := row["cells"].([]any)
			if err := appendRow(lines, cells, depth); err != nil {
				return err
			}
		}
	default:
		// Container and any element type this function does not know.
		return appendElements(lines, element["items"], depth+1)
	}
	return nil
}

// appendRow appends one line with the text of each cell side by side; the
// lines inside one cell are joined with spaces.
func appendRow(lines *[]string, cells []any, depth int) error {
	var texts []string
	for _, c := range cells {
		cell, ok := c.(map[string]any)
		if !ok || cell["isVisible"] == false {
			continue
		}
		var cellLines []string
		if err := appendElements(&cellLines, cell["items"], depth+1); err != nil {
			return err
		}
		if text := strings.Join(cellLines, " "); text != "" {
			texts = append(texts, text)
		}
	}
	appendText(lines, strings.Join(texts, columnGap))
	return nil
}

func appendActions(lines *[]string, list any) {
	actions, _ := list.([]any)
	for _, a := range actions {
		action, _ := a.(map[string]any)
		if title := stringField(action, "title"); title != "" {
			appendText(lines, "["+title+"]")
		}
	}
}

// appendText appends text, split at line breaks, without blank lines.
func appendText(lines *[]string, text string) {
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimRight(line, " \t\r"); strings.TrimSpace(line) != "" {
			*lines = append(*lines, line)
		}
	}
}

// inlineText joins the text of a RichTextBlock's inlines, which are TextRun
// objects or plain strings.
func inlineText(list any) string {
	inlines, _ := list.([]any)
	var b strings.Builder
	for _, in := range inlines {
		switch run := in.(type) {
		case string:
			b.WriteString(run)
		case map[string]any:
			b.WriteString(stringField(run, "text"))
		}
	}
	return b.String()
}

func stringField(object map[string]any, key string) string {
	s, _ := object[key].(string)
	return s
}
