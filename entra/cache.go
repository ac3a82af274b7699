package entra

import (
	"context"
	"sync"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
)

// tokenCache is MSAL's cache storage. It exists so that Invalidate can drop
// a token that a resource rejected: MSAL has no call to remove an app token,
// and AcquireTokenByCredential returns a cached token while it is valid.
type tokenCache struct {
	mu   sync.Mutex
	data []byte
}

// emptyCache is the serialised form of a cache with no entries; MSAL's
// Unmarshal replaces its whole in-memory contract with it.
var emptyCache = []byte("{}")

// Replace loads the stored cache into MSAL.
func (t *tokenCache) Replace(_ context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	t.mu.Lock()
	defer t.mu.Unlock()

	data := t.data
	if data == nil {
		data = emptyCache
	}
	return u.Unmarshal(data)
}

// Export stores MSAL's cache after it changed.
func (t *tokenCache) Export(_ context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = data
	return nil
}

func (t *tokenCache) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = nil
}
