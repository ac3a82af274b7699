package simtenant_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/simtenant"
)

type directoryPage struct {
	Value []struct {
		ODataType   string `json:"@odata.type"`
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
	} `json:"value"`
}

func TestDirectoryRelationships(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)
	meganTeams := sim.OwnedTeamIDs(simtenant.MeganUserID)
	if len(meganTeams) != 2 {
		t.Fatalf("Megan owns %v, want two Teams", meganTeams)
	}

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantIDs    []string
	}{
		{
			name:       "admin through a nested group",
			path:       "/users/" + simtenant.PlaygroundUserID + "/transitiveMemberOf/microsoft.graph.group?$select=id",
			wantStatus: http.StatusOK,
			wantIDs:    []string{simtenant.ITAdminsGroupID, "7d3c2a10-5e4f-4b6a-8c9d-0e1f2a3b4c5e"},
		},
		{
			name:       "student in no group",
			path:       "/users/" + simtenant.StudentUserID + "/transitiveMemberOf",
			wantStatus: http.StatusOK,
			wantIDs:    []string{},
		},
		{
			name:       "owned objects denied to an app",
			path:       "/users/" + simtenant.MeganUserID + "/ownedObjects/microsoft.graph.group?$select=id",
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "owners of a Team",
			path:       "/groups/" + strings.ToUpper(meganTeams[0]) + "/owners/microsoft.graph.user?$select=id",
			wantStatus: http.StatusOK,
			wantIDs:    []string{simtenant.MeganUserID},
		},
		{
			name:       "unknown user",
			path:       "/users/3c1e9f70-0000-4000-8000-000000000000/transitiveMemberOf",
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "unknown group",
			path:       "/groups/3c1e9f70-0000-4000-8000-000000000000/owners",
			wantStatus: http.StatusNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+tt.path, token, nil)
			if status != tt.wantStatus {
				t.Fatalf("returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if status != http.StatusOK {
				want := "Request_ResourceNotFound"
				if status == http.StatusForbidden {
					want = "Authorization_RequestDenied"
				}
				if code := decodeGraphError(t, body).Error.Code; code != want {
					t.Errorf("error code = %q, want %s", code, want)
				}
				return
			}

			var page directoryPage
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatalf("decode page: %v", err)
			}
			ids := []string{}
			for _, v := range page.Value {
				ids = append(ids, strings.ToLower(v.ID))
				if strings.Contains(tt.path, "$select=id") && v.DisplayName != "" {
					t.Errorf("object %s has displayName although $select=id", v.ID)
				}
			}
			slices.Sort(ids)
			want := slices.Sorted(slices.Values(tt.wantIDs))
			if !slices.Equal(ids, want) {
				t.Errorf("ids = %v, want %v", ids, want)
			}
		})
	}
}

func TestDirectoryRequiresToken(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	status, _, _ := send(t, sim, http.MethodGet, sim.GraphURL()+"/users/"+simtenant.PlaygroundUserID+"/transitiveMemberOf", "", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("returned status %d without a token, want 401", status)
	}
}

// Most school Teams have a staff owner, and a few have none, so owner lines
// in the demo show both cases.
func TestSchoolTeamsHaveStaffOwners(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)

	owned, ownerless := 0, 0
	for _, g := range simtenant.School() {
		if !g.IsTeam {
			continue
		}
		status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups/"+g.ID+"/owners", token, nil)
		if status != http.StatusOK {
			t.Fatalf("owners of %s: status %d: %s", g.ID, status, body)
		}
		var page directoryPage
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode owners of %s: %v", g.ID, err)
		}
		if len(page.Value) == 0 {
			ownerless++
		} else {
			owned++
		}
	}
	if ownerless == 0 {
		t.Error("every school Team has an owner, want a few without one")
	}
	if owned < 10*ownerless {
		t.Errorf("%d Teams have owners and %d have none, want most to have one", owned, ownerless)
	}
}
