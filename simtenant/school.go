package simtenant

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/storagebot/storagebot/scanner"
)

// Byte units, binary as SharePoint reports them.
const (
	kib int64 = 1 << 10
	mib int64 = 1 << 20
	gib int64 = 1 << 30
	tib int64 = 1 << 40
)

const (
	// SchoolTeamCount is the number of Teams in School().
	SchoolTeamCount = 535

	// schoolSeed fixes every id, name and size in School().
	schoolSeed = 20260901

	// defaultSiteQuota is the 25 TB storage limit that SharePoint gives a
	// site unless an admin sets a lower one.
	defaultSiteQuota = 25 * tib

	// maxGeneratedUsed keeps every generated Team well below The Library.
	maxGeneratedUsed = 700 * gib

	sharePointHost = "wrenfordacademy.sharepoint.com"
	driveName      = "Documents"
)

// Group is a group in the simulated directory. A Team is a Microsoft 365
// group with IsTeam set, which Graph lists with resourceProvisioningOptions
// ["Team"].
type Group struct {
	// ID is the group's object id, a GUID.
	ID          string
	DisplayName string
	IsTeam      bool
	// Drive is the group's default document library. Nil means the
	// SharePoint site is not provisioned, so Graph responds 404 itemNotFound.
	Drive *Drive
	// Channels are the Team's private and shared channels, each with a
	// SharePoint site of its own.
	Channels []Channel
}

// Drive is a group's default document library.
type Drive struct {
	// ID is the drive id, "b!" followed by 64 base64url characters.
	ID      string
	Name    string
	WebURL  string
	Created time.Time
	// Quota is all zero for a site whose usage SharePoint does not report.
	Quota scanner.Quota
}

// School returns the default directory: the 535 Teams of an invented
// secondary school, Wrenford Academy, and a few groups that are not Teams.
// The result is the same in every call.
//
// The Library (the school library's Team) uses the most bytes by far. A
// student club also named "The Library" sits mid-table. Some Teams have no
// drive, two report an all-zero quota, four are nearing, critical or over
// their quota, and many names carry apostrophes, accents, emoji, or Markdown
// and HTML characters. The group "Finance Office" is not a Team but has a
// drive larger than The Library's, so a scan that lists all groups instead
// of Teams ranks it first.
func School() []Group {
	g := newGenerator(schoolSeed)
	names := map[string]int{}

	var groups []Group
	for _, s := range schoolSpecials {
		names[s.name]++
		groups = append(groups, g.special(s))
	}
	groups = append(groups, g.teams(SchoolTeamCount-len(groups), names)...)
	for _, s := range schoolNonTeams {
		groups = append(groups, g.special(s))
	}
	addSchoolChannels(groups)

	sortByID(groups)
	return groups
}

// schoolChannel is a private or shared channel of a named school Team.
// used 0 with noSite leaves the channel's site unprovisioned.
type schoolChannel struct {
	team       string
	name       string
	membership string
	used       int64
	noSite     bool
}

// schoolChannels sit in Teams of the top 10, so that their sites visibly
// move the totals there: The Library gains 186 GiB and Drama Productions
// 85 GiB.
var schoolChannels = []schoolChannel{
	{team: "The Library", name: "Library Staff Room", membership: MembershipPrivate, used: 140 * gib},
	{team: "The Library", name: "Reading Programme", membership: MembershipShared, used: 46 * gib},
	{team: "The Library", name: "Archive Digitisation", membership: MembershipPrivate, noSite: true},
	{team: "🎭 Drama Productions", name: "Set Design", membership: MembershipPrivate, used: 82 * gib},
	{team: "🎭 Drama Productions", name: "Costume Budget", membership: MembershipPrivate, used: 3 * gib},
	{team: "Head's Office", name: "Safeguarding Cases", membership: MembershipPrivate, used: 12 * gib},
	{team: "Year 13 Leavers' Yearbook", name: "Photo Submissions", membership: MembershipShared, used: 25 * gib},
}

// addSchoolChannels gives the school's channels to their Teams. For "The
// Library" they go to the larger of the two Teams of that name, the school
// library's. Channels draw from a generator of their own, so that adding
// them changed no group's id or size.
func addSchoolChannels(groups []Group) {
	g := newGenerator(schoolSeed + 1)
	for _, c := range schoolChannels {
		team := largestTeamNamed(groups, c.team)
		if team == nil {
			continue
		}
		channel := Channel{ID: g.channelID(), DisplayName: c.name, MembershipType: c.membership}
		if !c.noSite {
			channel.Drive = g.channelDrive(team, c.name, c.used)
		}
		team.Channels = append(team.Channels, channel)
	}
}

func largestTeamNamed(groups []Group, name string) *Group {
	var found *Group
	for i := range groups {
		g := &groups[i]
		if !g.IsTeam || g.DisplayName != name || g.Drive == nil {
			continue
		}
		if found == nil || g.Drive.Quota.Used > found.Drive.Quota.Used {
			found = g
		}
	}
	return found
}

// channelID returns a channel id in Teams' form, 19:<32 hex>@thread.tacv2.
func (g *generator) channelID() string {
	var b [16]byte
	g.fill(b[:])
	return fmt.Sprintf("19:%x@thread.tacv2", b)
}

// channelDrive returns the drive of a channel's site, which SharePoint names
// after the Team and the channel, with the default site quota.
func (g *generator) channelDrive(team *Group, channelName string, used int64) *Drive {
	d := g.drive(team, used, defaultSiteQuota)
	site := mailNickname(team) + "-" + strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return -1
	}, channelName)
	d.WebURL = "https://" + sharePointHost + "/sites/" + site + "/Shared%20Documents"
	return d
}

// Generate returns teams deterministic Teams for scale tests, all different
// from School(): about 1% have no drive and 0.5% an all-zero quota, and
// about 4% have a private channel with a site of its own. Names repeat with a
// numeric suffix once the name catalogue runs out.
func Generate(teams int, seed uint64) []Group {
	g := newGenerator(seed)
	groups := g.teams(teams, map[string]int{})
	for i := range groups {
		switch g.rng.IntN(200) {
		case 0, 1:
			groups[i].Drive = nil
		case 2:
			groups[i].Drive.Quota = scanner.Quota{}
		}
	}

	// Channels draw from a generator of their own, so that they change no
	// group's id or size.
	cg := newGenerator(seed + 1)
	for i := range groups {
		if cg.rng.IntN(25) != 0 {
			continue
		}
		channel := Channel{ID: cg.channelID(), DisplayName: "Staff Only", MembershipType: MembershipPrivate}
		channel.Drive = cg.channelDrive(&groups[i], channel.DisplayName, cg.logNormal(2*gib, 1.0))
		groups[i].Channels = append(groups[i].Channels, channel)
	}
	sortByID(groups)
	return groups
}

// special describes one hand-made group of the school.
type special struct {
	name   string
	team   bool
	noSite bool
	// used and total in bytes; total 0 means defaultSiteQuota. zero makes
	// the quota all zero.
	used, total int64
	zero        bool
}

var schoolSpecials = []special{
	// The school library's Team: 1.68 TiB of a 2 TiB site quota.
	{name: "The Library", team: true, used: tib * 168 / 100, total: 2 * tib},
	// A student-run library club that shares the name.
	{name: "The Library", team: true, used: 2*gib + 300*mib},

	{name: "Head's Office", team: true, used: 38 * gib},
	{name: "Parents’ Forum", team: true, used: 740 * mib},
	{name: "Students’ Council", team: true, used: 3*gib + 120*mib},
	{name: "Year 13 Leavers' Yearbook", team: true, used: 61 * gib},
	{name: "Français – 9F1", team: true, used: 1*gib + 410*mib},
	{name: "Éco-délégués", team: true, used: 520 * mib},
	{name: "Échange linguistique – Lycée partenaire", team: true, used: 4*gib + 900*mib},
	{name: "🎭 Drama Productions", team: true, used: 96 * gib},
	{name: "Robotics Club 🤖", team: true, used: 12 * gib},
	{name: "📚 Reading Champions", team: true, used: 860 * mib},
	{name: "*Starred* Maths Challenge", team: true, used: 2*gib + 50*mib},
	{name: "snake_case Coders", team: true, used: 7 * gib},
	{name: "[Revision](notes) Year 11", team: true, used: 18 * gib},
	{name: "<b>Bold</b> Art Collective", team: true, used: 44 * gib},
	{name: "`git` Club", team: true, used: 310 * mib},
	{name: "Science & Engineering <STEM> Week", team: true, used: 9 * gib},

	// Quota states other than normal (thresholds from the Graph quota
	// resource: nearing below 10% remaining, critical below 1%).
	{name: "Media Studies Coursework", team: true, used: gib * 935 / 10, total: 100 * gib},
	{name: "Year 11 Art Portfolios", team: true, used: 183 * gib, total: 200 * gib},
	{name: "Photography A-Level", team: true, used: gib * 498 / 10, total: 50 * gib},
	{name: "Music Technology Recordings", team: true, used: gib * 264 / 10, total: 25 * gib},

	// Teams whose SharePoint site is not provisioned yet.
	{name: "New Staff Induction 2026", team: true, noSite: true},
	{name: "Sports Day Planning", team: true, noSite: true},
	{name: "Ski Trip 2027", team: true, noSite: true},
	{name: "Supply Teachers", team: true, noSite: true},
	{name: "Exam Board Liaison", team: true, noSite: true},
	{name: "Tutor Group 7Q (new)", team: true, noSite: true},

	// Teams whose quota SharePoint does not report.
	{name: "Archive – 2019 Leavers", team: true, zero: true},
	{name: "Old Intranet Migration", team: true, zero: true},
}

var schoolNonTeams = []special{
	{name: "Finance Office", used: tib * 19 / 10, total: 5 * tib},
	{name: "All Staff", used: 210 * gib},
	{name: "Wrenford Governors", used: 6 * gib},
	{name: "Exam Invigilators", noSite: true},
	{name: "Wi-Fi Access – Staff", noSite: true},
	{name: "IT Administrators", noSite: true},
	{name: "Parent Mailing List", noSite: true},
}

// category is a kind of generated Team with its typical drive size: used
// bytes follow a log-normal distribution around median.
type category struct {
	weight int
	median int64
	sigma  float64
	name   func(g *generator) string
}

var (
	subjects = []string{
		"Maths", "English", "Biology", "Chemistry", "Physics", "History", "Geography", "French", "Spanish",
		"German", "Art", "Music", "Drama", "PE", "Computing", "Design & Technology", "Religious Studies",
		"Food & Nutrition", "Economics", "Psychology", "Sociology", "Latin", "Media Studies", "Business", "Citizenship",
	}
	forms = []string{"W", "R", "E", "N", "F", "D"}
	clubs = []string{
		"Chess Club", "Debating Society", "Astronomy Society", "Gardening Club", "Senior Choir", "Jazz Band",
		"Model Parliament", "Coding Club", "Film Club", "Climbing Club", "Eco Warriors", "Photography Club",
		"Baking Club", "Origami Circle", "Young Engineers", "Poetry Slam", "Samba Band", "Board Games Club",
		"Creative Writing", "Duke's Award Expedition", "First Aid Volunteers", "Student Newspaper", "Radio Wrenford",
		"Maths Olympiad", "Hockey Squad", "Netball Squad", "Cross Country", "Rowing Club", "Textiles Studio",
	}
	staffTeams = []string{
		"Heads of Year", "Pastoral Team", "Exams Office", "Learning Support", "Site Team", "Reception & Admissions",
		"Careers Guidance", "Trips & Visits", "Safeguarding Leads", "Timetabling", "Data & Reporting",
		"Senior Leadership Team", "Teaching Assistants", "Staff Wellbeing", "IT Support Desk", "Catering Team",
	}
)

var categories = []category{
	{weight: 60, median: 1200 * mib, sigma: 1.0, name: func(g *generator) string {
		year := 7 + g.rng.IntN(7)
		return fmt.Sprintf("%s %d%s%d", g.pick(subjects), year, g.pick(forms), 1+g.rng.IntN(4))
	}},
	{weight: 10, median: 300 * mib, sigma: 0.9, name: func(g *generator) string {
		return fmt.Sprintf("Tutor Group %d%s", 7+g.rng.IntN(7), g.pick(forms))
	}},
	{weight: 8, median: 60 * gib, sigma: 0.8, name: func(g *generator) string {
		return g.pick(subjects) + " Department"
	}},
	{weight: 10, median: 2 * gib, sigma: 1.2, name: func(g *generator) string {
		return g.pick(clubs)
	}},
	{weight: 7, median: 25 * gib, sigma: 1.0, name: func(g *generator) string {
		return g.pick(staffTeams)
	}},
	{weight: 5, median: 15 * gib, sigma: 0.7, name: func(g *generator) string {
		return fmt.Sprintf("Year %d Team", 7+g.rng.IntN(7))
	}},
}

// generator draws every random value of a dataset from one seeded source,
// so the same seed yields the same groups.
type generator struct {
	rng   *rand.Rand
	epoch time.Time
}

func newGenerator(seed uint64) *generator {
	return &generator{
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		epoch: time.Date(2019, time.September, 2, 8, 0, 0, 0, time.UTC),
	}
}

func (g *generator) special(s special) Group {
	group := Group{ID: g.guid(), DisplayName: s.name, IsTeam: s.team}
	if s.noSite {
		return group
	}
	total := s.total
	if total == 0 {
		total = defaultSiteQuota
	}
	group.Drive = g.drive(&group, s.used, total)
	if s.zero {
		group.Drive.Quota = scanner.Quota{}
	}
	return group
}

// teams generates n Teams. names counts the uses of each name so far, and
// teams adds its own.
func (g *generator) teams(n int, names map[string]int) []Group {
	totalWeight := 0
	for _, c := range categories {
		totalWeight += c.weight
	}

	groups := make([]Group, 0, n)
	for range n {
		c, name := g.uniqueName(totalWeight, names)
		used := g.logNormal(c.median, c.sigma)

		group := Group{ID: g.guid(), DisplayName: name, IsTeam: true}
		group.Drive = g.drive(&group, used, defaultSiteQuota)
		groups = append(groups, group)
	}
	return groups
}

func (g *generator) category(totalWeight int) category {
	n := g.rng.IntN(totalWeight)
	for _, c := range categories {
		if n < c.weight {
			return c
		}
		n -= c.weight
	}
	return categories[0]
}

// maxNameDraws bounds the attempts at an unused name before a used one gets
// a numeric suffix. A school's catalogue has room for its 535 Teams, so the
// suffix shows up only in the larger generated tenants.
const maxNameDraws = 64

// uniqueName draws a category and a name from it that is not in names yet.
// When every draw hits a used name, it suffixes the last one with its use
// count, as in "Chess Club (3)".
func (g *generator) uniqueName(totalWeight int, names map[string]int) (category, string) {
	c := g.category(totalWeight)
	name := c.name(g)
	for range maxNameDraws {
		if names[name] == 0 {
			break
		}
		c = g.category(totalWeight)
		name = c.name(g)
	}
	names[name]++
	if n := names[name]; n > 1 {
		return c, fmt.Sprintf("%s (%d)", name, n)
	}
	return c, name
}

// logNormal draws bytes around median, between 512 KiB and maxGeneratedUsed.
func (g *generator) logNormal(median int64, sigma float64) int64 {
	v := float64(median) * math.Exp(sigma*g.rng.NormFloat64())
	return int64(min(max(v, float64(512*kib)), float64(maxGeneratedUsed)))
}

func (g *generator) drive(group *Group, used, total int64) *Drive {
	id := make([]byte, 48)
	g.fill(id)
	deleted := int64(float64(used) * 0.06 * g.rng.Float64())
	created := g.epoch.Add(time.Duration(g.rng.IntN(6*365*24)) * time.Hour)

	return &Drive{
		ID:      "b!" + base64.RawURLEncoding.EncodeToString(id),
		Name:    driveName,
		WebURL:  "https://" + sharePointHost + "/sites/" + mailNickname(group) + "/Shared%20Documents",
		Created: created,
		Quota:   newQuota(used, total, deleted),
	}
}

// newQuota fills remaining and state the way the Graph quota resource
// defines them: nearing below 10% remaining, critical below 1%, exceeded
// when used is over total.
func newQuota(used, total, deleted int64) scanner.Quota {
	q := scanner.Quota{Total: total, Used: used, Deleted: deleted, Remaining: max(total-used, 0), State: "normal"}
	switch {
	case used > total:
		q.State = "exceeded"
	case q.Remaining*100 < total:
		q.State = "critical"
	case q.Remaining*10 < total:
		q.State = "nearing"
	}
	return q
}

// guid returns a random version 4 GUID in lower case.
func (g *generator) guid() string {
	var b [16]byte
	g.fill(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// fill writes random bytes into b, eight at a time.
func (g *generator) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := g.rng.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

func (g *generator) pick(options []string) string {
	return options[g.rng.IntN(len(options))]
}

// mailNickname derives the group's mail nickname and site name: the ASCII
// letters and digits of its name and the first four hex digits of its id,
// which keep nicknames unique as Microsoft 365 requires.
func mailNickname(g *Group) string {
	var b strings.Builder
	for _, r := range g.DisplayName {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) && b.Len() < 40 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("group")
	}
	return b.String() + strings.ToUpper(g.ID[:4])
}

// sortByID orders groups by id, which looks random, like a directory
// listing. The list order is unrelated to size or name.
func sortByID(groups []Group) {
	slices.SortFunc(groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
}
