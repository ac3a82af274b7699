// Package cards turns storage scan results into Adaptive Cards 1.5 for
// Microsoft Teams, without any I/O.
package cards

import (
	"encoding/json"
	"strconv"
)

// ContentType is the Bot Framework attachment content type of an Adaptive Card.
const ContentType = "application/vnd.microsoft.card.adaptive"

// Card root constants. Teams renders schema 1.5 or earlier, and the schema
// requires a version on the top-level card.
const (
	schemaURL   = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion = "1.5"
)

// Element is a card body element: TextBlock, ColumnSet, Container, FactSet
// or ActionSet. The unexported method keeps other types out, because a card
// must only carry elements whose JSON this package controls.
type Element interface {
	isElement()
}

// Action is a card action: ActionSubmit or ActionOpenURL.
type Action interface {
	isAction()
}

// AdaptiveCard is the card root. Its JSON always carries the type, $schema,
// version 1.5 and the Teams full-width setting, so no card can leave them out.
type AdaptiveCard struct {
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
}

// TeamsCardProperties is the `msteams` object that Teams reads on the card
// root. Width "Full" stretches the card across the chat.
type TeamsCardProperties struct {
	Width string `json:"width"`
}

// MarshalJSON writes the card with its fixed root properties.
func (c AdaptiveCard) MarshalJSON() ([]byte, error) {
	type plain AdaptiveCard
	if c.Body == nil {
		c.Body = []Element{}
	}
	return json.Marshal(struct {
		Type    string              `json:"type"`
		Schema  string              `json:"$schema"`
		Version string              `json:"version"`
		MSTeams TeamsCardProperties `json:"msteams"`
		plain
	}{"AdaptiveCard", schemaURL, cardVersion, TeamsCardProperties{Width: "Full"}, plain(c)})
}

// TextBlock shows text. Teams renders Text as Markdown, so the cards of this
// package pass every name, query, reason or message from outside through
// Escape, and write their own text without Markdown syntax.
type TextBlock struct {
	Text                string `json:"text"`
	Wrap                bool   `json:"wrap,omitempty"`
	Weight              string `json:"weight,omitempty"`
	Size                string `json:"size,omitempty"`
	Color               string `json:"color,omitempty"`
	FontType            string `json:"fontType,omitempty"`
	IsSubtle            bool   `json:"isSubtle,omitempty"`
	HorizontalAlignment string `json:"horizontalAlignment,omitempty"`
	Spacing             string `json:"spacing,omitempty"`
	Separator           bool   `json:"separator,omitempty"`
}

// MarshalJSON writes the block with its element type.
func (b TextBlock) MarshalJSON() ([]byte, error) {
	type plain TextBlock
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"TextBlock", plain(b)})
}

// ColumnSet lays Columns side by side. storagebot builds table rows from
// ColumnSets rather than Table, which needs schema 1.5 and which Teams
// clients render less consistently.
type ColumnSet struct {
	Columns      []Column `json:"columns"`
	SelectAction Action   `json:"selectAction,omitempty"`
	Spacing      string   `json:"spacing,omitempty"`
	Separator    bool     `json:"separator,omitempty"`
}

// MarshalJSON writes the set with its element type.
func (s ColumnSet) MarshalJSON() ([]byte, error) {
	type plain ColumnSet
	if s.Columns == nil {
		s.Columns = []Column{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"ColumnSet", plain(s)})
}

// Column is one cell of a ColumnSet.
type Column struct {
	Items                    []Element   `json:"items"`
	Width                    ColumnWidth `json:"width,omitempty"`
	VerticalContentAlignment string      `json:"verticalContentAlignment,omitempty"`
	Spacing                  string      `json:"spacing,omitempty"`
}

// MarshalJSON writes the column with its type.
func (c Column) MarshalJSON() ([]byte, error) {
	type plain Column
	if c.Items == nil {
		c.Items = []Element{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"Column", plain(c)})
}

// ColumnWidth is a Column's width: WidthAuto, WidthStretch, a pixel width
// such as "40px", or a relative weight made with Weight.
type ColumnWidth string

// Keyword column widths.
const (
	WidthAuto    ColumnWidth = "auto"
	WidthStretch ColumnWidth = "stretch"
)

// Weight returns a relative column width: in a ColumnSet, a column of weight 2
// is twice as wide as a column of weight 1.
func Weight(n int) ColumnWidth {
	return ColumnWidth(strconv.Itoa(n))
}

// MarshalJSON writes a weight as a JSON number and anything else as a string,
// as the schema's Column.width expects.
func (w ColumnWidth) MarshalJSON() ([]byte, error) {
	if _, err := strconv.Atoi(string(w)); err == nil {
		return []byte(w), nil
	}
	return json.Marshal(string(w))
}

// Container groups elements, for example the footer.
type Container struct {
	Items        []Element `json:"items"`
	Style        string    `json:"style,omitempty"`
	SelectAction Action    `json:"selectAction,omitempty"`
	Spacing      string    `json:"spacing,omitempty"`
	Separator    bool      `json:"separator,omitempty"`
}

// MarshalJSON writes the container with its element type.
func (c Container) MarshalJSON() ([]byte, error) {
	type plain Container
	if c.Items == nil {
		c.Items = []Element{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"Container", plain(c)})
}

// FactSet shows title and value pairs. Both are Markdown in Teams.
type FactSet struct {
	Facts     []Fact `json:"facts"`
	Spacing   string `json:"spacing,omitempty"`
	Separator bool   `json:"separator,omitempty"`
}

// MarshalJSON writes the set with its element type.
func (s FactSet) MarshalJSON() ([]byte, error) {
	type plain FactSet
	if s.Facts == nil {
		s.Facts = []Fact{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"FactSet", plain(s)})
}

// Fact is one title and value pair of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// ActionSet shows buttons inside the body. One ActionSet per button keeps
// each under the renderer's default host config limit of 5 actions per set.
type ActionSet struct {
	Actions []Action `json:"actions"`
	Spacing string   `json:"spacing,omitempty"`
}

// MarshalJSON writes the set with its element type.
func (s ActionSet) MarshalJSON() ([]byte, error) {
	type plain ActionSet
	if s.Actions == nil {
		s.Actions = []Action{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"ActionSet", plain(s)})
}

// ActionSubmit sends Data back to the bot. In Teams it arrives as a message
// activity with no text and Data in the activity's value. The adaptivecards
// renderer shows Title as plain text, without Markdown.
type ActionSubmit struct {
	Title   string     `json:"title,omitempty"`
	Tooltip string     `json:"tooltip,omitempty"`
	Style   string     `json:"style,omitempty"`
	Data    SubmitData `json:"data"`
}

// MarshalJSON writes the action with its type.
func (a ActionSubmit) MarshalJSON() ([]byte, error) {
	type plain ActionSubmit
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"Action.Submit", plain(a)})
}

// SubmitData is the value of every Action.Submit that storagebot sends.
// N and Offset page through the top command's ranking.
type SubmitData struct {
	Cmd    string `json:"cmd"`
	TeamID string `json:"teamId,omitempty"`
	N      int    `json:"n,omitempty"`
	Offset int    `json:"offset,omitempty"`
}

// SubmitData commands.
const (
	// CmdUsage requests one Team's usage card.
	CmdUsage = "usage"
	// CmdTop requests a page of the ranking.
	CmdTop = "top"
)

// ActionOpenURL opens URL in the browser.
type ActionOpenURL struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

// MarshalJSON writes the action with its type.
func (a ActionOpenURL) MarshalJSON() ([]byte, error) {
	type plain ActionOpenURL
	return json.Marshal(struct {
		Type string `json:"type"`
		plain
	}{"Action.OpenUrl", plain(a)})
}

// CardAttachment is a Bot Framework attachment that carries a card.
type CardAttachment struct {
	ContentType string       `json:"contentType"`
	Content     AdaptiveCard `json:"content"`
}

// Attachment wraps card for an activity's attachments.
func Attachment(card AdaptiveCard) CardAttachment {
	return CardAttachment{ContentType: ContentType, Content: card}
}

func (TextBlock) isElement() {}
func (ColumnSet) isElement() {}
func (Container) isElement() {}
func (FactSet) isElement()   {}
func (ActionSet) isElement() {}

func (ActionSubmit) isAction()  {}
func (ActionOpenURL) isAction() {}
