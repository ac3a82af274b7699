package cards

import (
	"fmt"
	"slices"
	"strings"
)

// Command is one line of the help card: how to type a command and what it
// does.
type Command struct {
	Usage       string
	Description string
}

// Help builds the card that lists the bot's commands. Help escapes Usage and
// Description, which are plain text. Commands that do not fit under
// MaxCardBytes are left out and counted.
func Help(commands []Command) AdaptiveCard {
	head := []Element{
		TextBlock{Text: "Commands", Weight: "Bolder", Size: "Medium", Wrap: true},
	}

	facts := make([]Fact, 0, len(commands))
	for _, c := range commands {
		facts = append(facts, Fact{
			Title: Escape(clip(c.Usage, maxCommandRunes)),
			Value: Escape(clip(c.Description, maxCommandRunes)),
		})
	}

	return fitCard(len(facts), func(k int) AdaptiveCard {
		body := slices.Clone(head)
		if k > 0 {
			body = append(body, FactSet{Facts: facts[:k]})
		}
		if omitted := len(facts) - k; omitted > 0 {
			text := fmt.Sprintf("… and %d more %s", omitted, plural(omitted, "command", "commands"))
			body = append(body, TextBlock{Text: text, IsSubtle: true, Wrap: true})
		}
		return AdaptiveCard{Body: body}
	})
}

// Message builds a short notice, such as "team not found" or "no scan yet",
// or an error that is safe to show. Message escapes title and text, which are
// plain text, and shows each line of text as its own paragraph.
func Message(title, text string) AdaptiveCard {
	var body []Element
	if strings.TrimSpace(title) != "" {
		body = append(body, TextBlock{Text: Escape(clip(title, maxTitleRunes)), Weight: "Bolder", Size: "Medium", Wrap: true})
	}
	for _, line := range strings.Split(clip(text, maxMessageRunes), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		body = append(body, TextBlock{Text: Escape(line), Wrap: true})
	}
	return AdaptiveCard{Body: body}
}
