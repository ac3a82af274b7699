package simtenant

import (
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
)

// Users of the school, with the Entra object ids that the Microsoft 365
// Agents Playground 0.2.28 gives its five default users, so that chatting
// from the Playground exercises every role.
const (
	// PlaygroundUserID is Alex Wilber, the Playground's default user, an
	// admin through IT Support Staff, a member of IT Admins.
	PlaygroundUserID = "00000000-0000-0000-0000-0000000000020"
	// MeganUserID is Megan Bowen, a teacher who owns two clubs' Teams.
	MeganUserID = "00000000-0000-0000-0000-0000000000021"
	// AdeleUserID is Adele Vance, the librarian, who owns The Library.
	AdeleUserID = "00000000-0000-0000-0000-0000000000022"
	// StudentUserID is a student with no role: neither admin nor owner.
	StudentUserID = "00000000-0000-0000-0000-0000000000023"

	// ITAdminsGroupID is the security group whose transitive members are
	// the bot's admins in the demo.
	ITAdminsGroupID = "7d3c2a10-5e4f-4b6a-8c9d-0e1f2a3b4c5d"
	// itSupportGroupID is nested in IT Admins.
	itSupportGroupID = "7d3c2a10-5e4f-4b6a-8c9d-0e1f2a3b4c5e"
)

// Routes of the directory endpoints, counted in Stats.
const (
	RouteTransitiveMemberOf Route = "graph.transitive_member_of"
	RouteOwnedObjects       Route = "graph.owned_objects"
	RouteOwners             Route = "graph.owners"
)

// person is a user of the simulated directory.
type person struct {
	id          string
	displayName string
	// memberOf are the ids of the security groups the user is a direct
	// member of.
	memberOf []string
	// owns are the display names of the Teams the user owns. A name that
	// is missing or ambiguous in the tenant's groups is skipped.
	owns []string
}

// securityGroup is a group that is not in Options.Groups: it has no drive
// and is never a Team.
type securityGroup struct {
	id          string
	displayName string
	memberOf    []string
}

var schoolPeople = []person{
	{id: PlaygroundUserID, displayName: "Alex Wilber", memberOf: []string{itSupportGroupID}},
	{id: MeganUserID, displayName: "Megan Bowen", owns: []string{"Robotics Club 🤖", "snake_case Coders"}},
	{id: AdeleUserID, displayName: "Adele Vance", owns: []string{"📚 Reading Champions", "Head's Office"}},
	{id: StudentUserID, displayName: "Lynne Robbins"},
}

// schoolStaff own the Teams that no user of schoolPeople owns, one each,
// picked from the group id, so owner lines in the demo look like a school's.
// They are not Agents Playground users, so nobody chats as them.
var schoolStaff = []person{
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000101", displayName: "Dana Whitfield"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000102", displayName: "Tomasz Nowicki"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000103", displayName: "Priya Raman"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000104", displayName: "Hugo Ferreira"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000105", displayName: "Niamh O'Connell"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000106", displayName: "Kwame Asante"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000107", displayName: "Léa Marchand"},
	{id: "5a1d0c3e-2b4f-4e61-9a70-000000000108", displayName: "Sofia Lindqvist"},
}

// ownerlessEvery makes one Team in this many (by group id) have no owner
// at all, as happens when the last owner leaves the school.
const ownerlessEvery = 25

var schoolSecurityGroups = []securityGroup{
	{id: ITAdminsGroupID, displayName: "IT Admins"},
	{id: itSupportGroupID, displayName: "IT Support Staff", memberOf: []string{ITAdminsGroupID}},
}

// directoryObjectJSON is one item of a directoryObject collection.
type directoryObjectJSON struct {
	ODataType   string `json:"@odata.type"`
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
}

type directoryObjectPage struct {
	Context string                `json:"@odata.context"`
	Value   []directoryObjectJSON `json:"value"`
}

// directoryRoutes registers the user and group relationship endpoints that
// the bot's role checks read. Each is served with and without the
// microsoft.graph.group or microsoft.graph.user type cast.
func (t *Tenant) directoryRoutes(handle func(pattern string, route Route, h http.HandlerFunc)) {
	handle("GET /v1.0/users/{id}/transitiveMemberOf", RouteTransitiveMemberOf, t.graph(t.handleTransitiveMemberOf))
	handle("GET /v1.0/users/{id}/transitiveMemberOf/microsoft.graph.group", RouteTransitiveMemberOf, t.graph(t.handleTransitiveMemberOf))
	handle("GET /v1.0/users/{id}/ownedObjects", RouteOwnedObjects, t.graph(t.handleOwnedObjects))
	handle("GET /v1.0/users/{id}/ownedObjects/microsoft.graph.group", RouteOwnedObjects, t.graph(t.handleOwnedObjects))
	handle("GET /v1.0/groups/{id}/owners", RouteOwners, t.graph(t.handleOwners))
	handle("GET /v1.0/groups/{id}/owners/microsoft.graph.user", RouteOwners, t.graph(t.handleOwners))
}

// OwnedTeamIDs returns the ids of the Teams that userID owns, sorted.
func (t *Tenant) OwnedTeamIDs(userID string) []string {
	p, ok := findPerson(userID)
	if !ok {
		return nil
	}
	return t.ownedGroupIDs(p)
}

// handleTransitiveMemberOf lists the groups a user belongs to, directly or
// through nested groups.
func (t *Tenant) handleTransitiveMemberOf(w http.ResponseWriter, r *http.Request) {
	p, ok := findPerson(r.PathValue("id"))
	if !ok {
		t.writeResourceNotFound(w, r, r.PathValue("id"))
		return
	}

	var groups []directoryObjectJSON
	for _, id := range transitiveGroups(p.memberOf) {
		g, _ := findSecurityGroup(id)
		groups = append(groups, directoryObject("#microsoft.graph.group", g.id, g.displayName, r))
	}
	t.writeDirectoryObjects(w, r, groups)
}

// handleOwnedObjects answers as Graph does for an app-only token: List
// ownedObjects supports no application permission (learn.microsoft.com,
// "List ownedObjects"), so the call is denied whatever the app holds.
func (t *Tenant) handleOwnedObjects(w http.ResponseWriter, r *http.Request) {
	t.writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied",
		"Insufficient privileges to complete the operation.")
}

// handleOwners lists the owners of a group.
func (t *Tenant) handleOwners(w http.ResponseWriter, r *http.Request) {
	groupID := strings.ToLower(r.PathValue("id"))
	if _, ok := t.dir.byID[groupID]; !ok {
		if _, ok := findSecurityGroup(groupID); !ok {
			t.writeResourceNotFound(w, r, r.PathValue("id"))
			return
		}
	}

	var owners []directoryObjectJSON
	for _, p := range schoolPeople {
		if slices.Contains(t.ownedGroupIDs(p), groupID) {
			owners = append(owners, directoryObject("#microsoft.graph.user", p.id, p.displayName, r))
		}
	}
	if staff, ok := t.staffOwner(groupID); ok && len(owners) == 0 {
		owners = append(owners, directoryObject("#microsoft.graph.user", staff.id, staff.displayName, r))
	}
	t.writeDirectoryObjects(w, r, owners)
}

// staffOwner returns the member of schoolStaff who owns the Team groupID,
// or false for a security group and for the Teams left without an owner.
func (t *Tenant) staffOwner(groupID string) (person, bool) {
	i, ok := t.dir.byID[groupID]
	if !ok || !t.dir.groups[i].IsTeam {
		return person{}, false
	}
	h := fnv.New32a()
	h.Write([]byte(groupID))
	sum := h.Sum32()
	if sum%ownerlessEvery == 0 {
		return person{}, false
	}
	return schoolStaff[sum%uint32(len(schoolStaff))], true
}

// ownedGroupIDs resolves p's owned Team names to the lower-case ids of the
// tenant's groups, skipping names that match no group or more than one.
func (t *Tenant) ownedGroupIDs(p person) []string {
	var ids []string
	for _, name := range p.owns {
		var matches []string
		for _, g := range t.dir.groups {
			if g.IsTeam && g.DisplayName == name {
				matches = append(matches, strings.ToLower(g.ID))
			}
		}
		if len(matches) == 1 {
			ids = append(ids, matches[0])
		}
	}
	slices.Sort(ids)
	return ids
}

// writeDirectoryObjects writes one page holding every object.
//
// NOTE: the sim never pages these collections, because the school's users
// belong to and own a handful of groups; Graph pages them at 100 by default.
func (t *Tenant) writeDirectoryObjects(w http.ResponseWriter, r *http.Request, objects []directoryObjectJSON) {
	if objects == nil {
		objects = []directoryObjectJSON{}
	}
	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, directoryObjectPage{
		Context: t.url + "/v1.0/$metadata#directoryObjects",
		Value:   objects,
	})
}

// writeResourceNotFound writes the 404 that Graph returns for an unknown
// user or group id.
func (t *Tenant) writeResourceNotFound(w http.ResponseWriter, r *http.Request, id string) {
	t.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		"Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}

// directoryObject renders an object, leaving displayName out when $select
// asks for other properties only.
func directoryObject(odataType, id, displayName string, r *http.Request) directoryObjectJSON {
	object := directoryObjectJSON{ODataType: odataType, ID: id}
	selection := r.URL.Query().Get("$select")
	if selection == "" || slices.Contains(strings.Split(selection, ","), "displayName") {
		object.DisplayName = displayName
	}
	return object
}

// transitiveGroups returns direct plus nested group ids, each once, in the
// order they are reached.
func transitiveGroups(direct []string) []string {
	var out []string
	queue := slices.Clone(direct)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if slices.Contains(out, id) {
			continue
		}
		out = append(out, id)
		if g, ok := findSecurityGroup(id); ok {
			queue = append(queue, g.memberOf...)
		}
	}
	return out
}

func findPerson(id string) (person, bool) {
	for _, p := range schoolPeople {
		if strings.EqualFold(p.id, id) {
			return p, true
		}
	}
	return person{}, false
}

func findSecurityGroup(id string) (securityGroup, bool) {
	for _, g := range schoolSecurityGroups {
		if strings.EqualFold(g.id, id) {
			return g, true
		}
	}
	return securityGroup{}, false
}
