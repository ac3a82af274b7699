package simtenant

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

const (
	// defaultPageSize and maxPageSize are Graph's page sizes for groups.
	defaultPageSize = 100
	maxPageSize     = 999

	graphContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	graphDateLayout  = "2006-01-02T15:04:05"
	skipTokenPrefix  = "simtenant-groups:"
)

// teamFilter matches the only $filter the sim supports, in the forms Graph
// accepts: any lambda variable, "any" or "Any", and any spacing.
var teamFilter = regexp.MustCompile(`(?i)^\s*resourceProvisioningOptions/any\(\s*(\w+)\s*:\s*(\w+)\s+eq\s+'([^']*)'\s*\)\s*$`)

// groupProperties are the group properties the sim can return, in the order
// Graph writes them.
var groupProperties = []string{"id", "displayName", "groupTypes", "mailEnabled", "mailNickname", "resourceProvisioningOptions", "securityEnabled"}

// groupJSON is a group in a Graph list response; nil fields were not
// selected and are left out.
type groupJSON struct {
	ID                          *string   `json:"id,omitempty"`
	DisplayName                 *string   `json:"displayName,omitempty"`
	GroupTypes                  *[]string `json:"groupTypes,omitempty"`
	MailEnabled                 *bool     `json:"mailEnabled,omitempty"`
	MailNickname                *string   `json:"mailNickname,omitempty"`
	ResourceProvisioningOptions *[]string `json:"resourceProvisioningOptions,omitempty"`
	SecurityEnabled             *bool     `json:"securityEnabled,omitempty"`
}

type groupPage struct {
	Context  string      `json:"@odata.context"`
	NextLink string      `json:"@odata.nextLink,omitempty"`
	Value    []groupJSON `json:"value"`
}

type driveJSON struct {
	Context              string        `json:"@odata.context"`
	CreatedDateTime      string        `json:"createdDateTime"`
	Description          string        `json:"description"`
	ID                   string        `json:"id"`
	LastModifiedDateTime string        `json:"lastModifiedDateTime"`
	Name                 string        `json:"name"`
	WebURL               string        `json:"webUrl"`
	DriveType            string        `json:"driveType"`
	CreatedBy            identitySet   `json:"createdBy"`
	Owner                identitySet   `json:"owner"`
	Quota                scanner.Quota `json:"quota"`
}

type identitySet struct {
	User  *identity `json:"user,omitempty"`
	Group *identity `json:"group,omitempty"`
}

type identity struct {
	ID          string `json:"id,omitempty"`
	DisplayName string `json:"displayName"`
}

type graphError struct {
	Error graphErrorBody `json:"error"`
}

type graphErrorBody struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	InnerError graphInnerError `json:"innerError"`
}

type graphInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// directory is the sim's immutable set of groups.
type directory struct {
	groups []Group
	byID   map[string]int
	// teams holds the indexes of the groups that are Teams, in list order.
	teams []int
	all   []int
	// drives holds every drive by id: the groups' and the channel sites'.
	drives map[string]driveOwner
}

func newDirectory(groups []Group) directory {
	d := directory{groups: groups, byID: make(map[string]int, len(groups)), all: make([]int, len(groups)), drives: map[string]driveOwner{}}
	for i := range groups {
		g := &groups[i]
		d.byID[strings.ToLower(g.ID)] = i
		d.all[i] = i
		if g.IsTeam {
			d.teams = append(d.teams, i)
		}
		if g.Drive != nil {
			d.drives[g.Drive.ID] = driveOwner{drive: g.Drive, group: g}
		}
		for _, c := range g.Channels {
			if c.Drive != nil {
				d.drives[c.Drive.ID] = driveOwner{drive: c.Drive, group: g}
			}
		}
	}
	return d
}

// graph wraps a Graph handler with what every Graph request goes through:
// the HTTP request's own checks (see graphRequest) and the throttle for one
// Graph request that costs one resource unit.
func (t *Tenant) graph(next http.HandlerFunc) http.HandlerFunc {
	return t.graphRequest(t.admit(costSingleItem, next))
}

// graphList is graph for a list request, which SharePoint charges two
// resource units.
func (t *Tenant) graphList(next http.HandlerFunc) http.HandlerFunc {
	return t.graphRequest(t.admit(costList, next))
}

// graphRequest wraps what every HTTP request to Graph goes through, a JSON
// batch included: request ids, the concurrency cap, latency and bearer
// token validation.
func (t *Tenant) graphRequest(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		requestID := t.ids.nextRequestID()
		latency := t.latency
		admitted, capRetryAfter := t.concurrency.enter()
		if !admitted {
			t.stats.Throttled++
		}
		t.mu.Unlock()
		if admitted {
			defer func() {
				t.mu.Lock()
				t.concurrency.leave()
				t.mu.Unlock()
			}()
		}
		w.Header().Set("request-id", requestID)
		w.Header().Set("client-request-id", cmp.Or(r.Header.Get("client-request-id"), requestID))

		if !wait(r.Context(), latency) {
			return
		}
		if !admitted {
			w.Header().Set("Retry-After", formatRetryAfter(capRetryAfter))
			t.writeGraphError(w, r, http.StatusTooManyRequests, "TooManyRequests", "Too many concurrent requests. Please try again later.")
			return
		}

		if _, err := t.graphToken(r); err != nil {
			t.log.Debug("reject Graph token", "request_id", requestID, "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="", authorization_uri="%s/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`, t.url))
			t.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", graphTokenMessage(err))
			return
		}

		next(w, r)
	}
}

// admit applies the per-app request bucket and the resource-unit budget to
// one Graph request, alone or inside a JSON batch, which Graph throttles
// one by one.
func (t *Tenant) admit(cost int, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		now := t.now()
		ok, retryAfter := t.bucket.take(now)
		if ok {
			ok, retryAfter = t.budget.takeCost(now, float64(cost))
			if !ok {
				// A request that the budget rejects still took its bucket
				// token: throttled requests count, as SharePoint documents.
				t.stats.BudgetThrottled++
			}
		}
		if !ok {
			t.stats.Throttled++
		}
		t.budget.writeHeaders(w.Header(), now)
		t.mu.Unlock()

		if !ok {
			w.Header().Set("Retry-After", formatRetryAfter(retryAfter))
			t.writeGraphError(w, r, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please try again later.")
			return
		}
		next(w, r)
	}
}

func (t *Tenant) graphToken(r *http.Request) (accessClaims, error) {
	raw, err := bearerToken(r)
	if err != nil {
		return accessClaims{}, err
	}
	claims, err := t.signer.verify(raw, GraphResource, t.opts.TenantID, t.now())
	if err != nil {
		return accessClaims{}, err
	}
	t.mu.Lock()
	expired := t.expired[claims.UTI]
	t.mu.Unlock()
	if expired {
		return accessClaims{}, fmt.Errorf("check token %s: expired early: %w", claims.UTI, errTokenExpired)
	}
	return claims, nil
}

// graphTokenMessage returns the message Graph sends with a 401 for err.
func graphTokenMessage(err error) string {
	switch {
	case errors.Is(err, errNoBearer):
		return "Access token is empty."
	case errors.Is(err, errTokenExpired):
		return "Access token has expired or is not yet valid."
	case errors.Is(err, errTokenAudience):
		return "Access token validation failure. Invalid audience."
	default:
		return "Access token validation failure."
	}
}

// handleGroups lists groups with Graph's paging: $top, an absolute
// @odata.nextLink with an opaque $skiptoken, and $select.
func (t *Tenant) handleGroups(w http.ResponseWriter, r *http.Request) {
	query, err := graphQuery(r.URL.Query())
	if err != nil {
		t.writeGraphQueryError(w, r, err)
		return
	}

	indexes := t.dir.all
	if query.filter != "" {
		m := teamFilter.FindStringSubmatch(query.filter)
		if m == nil || m[1] != m[2] || !strings.EqualFold(m[3], "Team") {
			t.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'resourceProvisioningOptions' of resource 'Group'.")
			return
		}
		indexes = t.dir.teams
	}

	top, ok := pageSize(query.top)
	if !ok {
		t.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", query.top, maxPageSize))
		return
	}
	selected, unknown := selectedProperties(query.selection)
	if unknown != "" {
		t.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.group'.", unknown))
		return
	}
	offset, ok := decodeSkipToken(query.skipToken, len(indexes))
	if !ok {
		t.writeGraphError(w, r, http.StatusBadRequest, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
		return
	}

	end := min(offset+top, len(indexes))
	page := groupPage{Context: t.GraphURL() + "/$metadata#groups", Value: make([]groupJSON, 0, end-offset)}
	if query.selection != "" {
		page.Context = t.GraphURL() + "/$metadata#groups(" + strings.Join(selected, ",") + ")"
	}
	for _, i := range indexes[offset:end] {
		page.Value = append(page.Value, renderGroup(&t.dir.groups[i], selected))
	}
	if end < len(indexes) {
		page.NextLink = t.groupsNextLink(query, end)
	}

	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, page)
}

// handleDrive returns a group's default document library with its quota.
func (t *Tenant) handleDrive(w http.ResponseWriter, r *http.Request) {
	groupID := r.PathValue("id")
	if t.writeFault(w, r) {
		return
	}

	i, ok := t.dir.byID[strings.ToLower(groupID)]
	if !ok {
		// NOTE: Graph does not document its error code for the drive of an
		// unknown group. The sim uses the directory's code for a missing object.
		t.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", groupID))
		return
	}
	g := &t.dir.groups[i]
	if g.Drive == nil {
		t.writeGraphError(w, r, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
		return
	}
	t.writeDrive(w, r, g.Drive, g)
}

// writeFault fails the request when the fault injector picks it, and
// reports whether it did.
func (t *Tenant) writeFault(w http.ResponseWriter, r *http.Request) bool {
	t.mu.Lock()
	fault := t.faults.pick()
	if fault != 0 {
		t.stats.Faults++
	}
	t.mu.Unlock()

	switch fault {
	case http.StatusServiceUnavailable:
		t.writeGraphError(w, r, fault, "serviceNotAvailable", "The service is not available. Try the request again after a delay.")
		return true
	case http.StatusInternalServerError:
		t.writeGraphError(w, r, fault, "generalException", "An unspecified error has occurred.")
		return true
	}
	return false
}

// writeDrive writes drive d, which belongs to the site of group g.
func (t *Tenant) writeDrive(w http.ResponseWriter, r *http.Request, d *Drive, g *Group) {
	created := d.Created.UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, driveJSON{
		Context:              t.GraphURL() + "/$metadata#drives/$entity",
		CreatedDateTime:      created,
		ID:                   d.ID,
		LastModifiedDateTime: created,
		Name:                 d.Name,
		WebURL:               d.WebURL,
		DriveType:            "documentLibrary",
		CreatedBy:            identitySet{User: &identity{DisplayName: "System Account"}},
		Owner:                identitySet{Group: &identity{ID: g.ID, DisplayName: g.DisplayName}},
		Quota:                d.Quota,
	})
}

// handleUnknown responds to a path no route matched: under /v1.0/ as Graph does
// for a segment it cannot resolve, elsewhere with a plain 404.
func (t *Tenant) handleUnknown(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/")
	if !ok {
		http.NotFound(w, r)
		return
	}

	t.mu.Lock()
	requestID := t.ids.nextRequestID()
	t.mu.Unlock()
	w.Header().Set("request-id", requestID)

	segment, _, _ := strings.Cut(rest, "/")
	t.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", segment))
}

// listQuery holds the OData query options of a group list request. Graph
// v1.0 accepts them with or without the "$" prefix.
type listQuery struct {
	filter, selection, top, skipToken string
}

// errUnsupportedQueryOption is returned by graphQuery for a query option the
// sim does not model.
var errUnsupportedQueryOption = errors.New("unsupported query option")

func graphQuery(values url.Values) (listQuery, error) {
	var q listQuery
	for key, v := range values {
		value := v[len(v)-1]
		switch strings.TrimPrefix(key, "$") {
		case "filter":
			q.filter = value
		case "select":
			q.selection = value
		case "top":
			q.top = value
		case "skiptoken":
			q.skipToken = value
		default:
			return listQuery{}, fmt.Errorf("query option %q: %w", key, errUnsupportedQueryOption)
		}
	}
	return q, nil
}

func (t *Tenant) writeGraphQueryError(w http.ResponseWriter, r *http.Request, err error) {
	t.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("The simulated tenant does not support this request: %v.", err))
}

// pageSize parses $top; ok is false when it is not an integer from 1 to 999.
func pageSize(top string) (n int, ok bool) {
	if top == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(top)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, false
	}
	return n, true
}

// selectedProperties returns the properties to write, in Graph's order, or
// the first property of $select that groups do not have. An empty $select
// selects every property.
func selectedProperties(selection string) (properties []string, unknown string) {
	if selection == "" {
		return groupProperties, ""
	}
	want := map[string]bool{}
	for _, p := range strings.Split(selection, ",") {
		p = strings.TrimSpace(p)
		known := false
		for _, q := range groupProperties {
			if strings.EqualFold(p, q) {
				want[q], known = true, true
			}
		}
		if !known {
			return nil, p
		}
	}
	for _, p := range groupProperties {
		if want[p] {
			properties = append(properties, p)
		}
	}
	return properties, ""
}

func renderGroup(g *Group, properties []string) groupJSON {
	var out groupJSON
	unified := g.IsTeam || g.Drive != nil
	for _, p := range properties {
		switch p {
		case "id":
			out.ID = &g.ID
		case "displayName":
			out.DisplayName = &g.DisplayName
		case "groupTypes":
			types := []string{}
			if unified {
				types = []string{"Unified"}
			}
			out.GroupTypes = &types
		case "mailEnabled":
			out.MailEnabled = &unified
		case "mailNickname":
			nickname := mailNickname(g)
			out.MailNickname = &nickname
		case "resourceProvisioningOptions":
			options := []string{}
			if g.IsTeam {
				options = []string{"Team"}
			}
			out.ResourceProvisioningOptions = &options
		case "securityEnabled":
			security := !unified
			out.SecurityEnabled = &security
		}
	}
	return out
}

// groupsNextLink rebuilds the request's query with a $skiptoken for offset.
func (t *Tenant) groupsNextLink(q listQuery, offset int) string {
	var params []string
	if q.filter != "" {
		params = append(params, "$filter="+escapeQueryValue(q.filter))
	}
	if q.selection != "" {
		params = append(params, "$select="+escapeQueryValue(q.selection))
	}
	if q.top != "" {
		params = append(params, "$top="+escapeQueryValue(q.top))
	}
	params = append(params, "$skiptoken="+encodeSkipToken(offset))
	return t.GraphURL() + "/groups?" + strings.Join(params, "&")
}

func escapeQueryValue(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// encodeSkipToken hides the page offset; clients must treat it as opaque.
func encodeSkipToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(skipTokenPrefix + strconv.Itoa(offset)))
}

func decodeSkipToken(token string, limit int) (int, bool) {
	if token == "" {
		return 0, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	digits, ok := strings.CutPrefix(string(raw), skipTokenPrefix)
	if !ok {
		return 0, false
	}
	offset, err := strconv.Atoi(digits)
	if err != nil || offset < 0 || offset > limit {
		return 0, false
	}
	return offset, true
}

func (t *Tenant) writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	requestID := w.Header().Get("request-id")
	writeJSON(w, t.log, status, graphError{Error: graphErrorBody{
		Code:    code,
		Message: message,
		InnerError: graphInnerError{
			Date:            t.now().UTC().Format(graphDateLayout),
			RequestID:       requestID,
			ClientRequestID: cmp.Or(r.Header.Get("client-request-id"), requestID),
		},
	}})
}

// writeJSON encodes v with status. A write error means the client went away,
// which the sim only logs.
func writeJSON(w http.ResponseWriter, log *slog.Logger, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		log.Error("encode response", "status", status, "err", err)
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		log.Debug("write response", "status", status, "err", err)
	}
}
