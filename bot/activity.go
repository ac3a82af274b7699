package bot

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// incoming is a decoded activity plus the parts msbotbuilder-go's schema
// loses: the mention entities' text and mentioned id, and a value that is
// a JSON string.
type incoming struct {
	activity schema.Activity
	// value is the card submit data, nil when the activity carries none.
	value map[string]any
	// mentions are the activity's mention entities.
	mentions []mention
}

// mention is a Bot Framework mention entity.
type mention struct {
	Type      string `json:"type"`
	Text      string `json:"text"`
	Mentioned struct {
		ID string `json:"id"`
	} `json:"mentioned"`
}

// wireActivity decodes the body in one pass. Its Value and Entities shadow
// the embedded schema.Activity fields of the same JSON names, because
// schema.Activity.Value is a map (a messageBack value may be a JSON string)
// and schema.Entity keeps only "type".
type wireActivity struct {
	schema.Activity
	Value    json.RawMessage   `json:"value,omitempty"`
	Entities []json.RawMessage `json:"entities,omitempty"`
}

// decodeActivity parses an activity body.
func decodeActivity(body []byte) (incoming, error) {
	var wire wireActivity
	if err := json.Unmarshal(body, &wire); err != nil {
		return incoming{}, fmt.Errorf("decode activity: %w", err)
	}
	if wire.Activity.Type == "" {
		return incoming{}, errors.New("decode activity: missing type")
	}

	in := incoming{activity: wire.Activity}
	for _, raw := range wire.Entities {
		// An entity of an unexpected shape is skipped: only mentions are
		// read, and one odd entity must not cost the whole message.
		var m mention
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		in.activity.Entities = append(in.activity.Entities, schema.Entity{Type: m.Type})
		if m.Type == "mention" {
			in.mentions = append(in.mentions, m)
		}
	}

	in.value = decodeValue(wire.Value)
	in.activity.Value = in.value
	return in, nil
}

// decodeValue returns value as an object. An Action.Submit sends an object;
// a messageBack may send the object encoded as a JSON string. Anything else
// (a number, an array, a string that is no object) carries no command and
// returns nil.
func decodeValue(raw json.RawMessage) map[string]any {
	var object map[string]any
	if json.Unmarshal(raw, &object) == nil {
		return object
	}

	var text string
	if json.Unmarshal(raw, &text) != nil {
		return nil
	}
	if json.Unmarshal([]byte(text), &object) != nil {
		return nil
	}
	return object
}

// tenantID returns channelData.tenant.id, or conversation.tenantId when
// channelData has none. Teams sends both; other channels may send either.
func tenantID(a schema.Activity) string {
	if tenant, ok := a.ChannelData["tenant"].(map[string]any); ok {
		if id, ok := tenant["id"].(string); ok && id != "" {
			return id
		}
	}
	return a.Conversation.TenantID
}
