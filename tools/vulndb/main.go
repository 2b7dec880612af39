// Command vulndb writes a grype vulnerability database (schema v6) from advisories given as
// YAML or JSON, with grype's own code: the advisories become vunnel provider workspaces
// (grype's provider.WorkspaceWriter, vunnel's "os" and "nvd" record schemas), grype's DB build
// (db.Build: its processors, transformers and v6 writer) turns them into vulnerability.db plus
// import.json, and grype's v6 build.CreateArchive packs that into the archive and latest.json
// that `grype db import` takes. Nothing here writes SQLite or the archive format itself.
//
// Usage:
//
//	vulndb [-v] -in advisories.yaml -out DIR
//
// DIR receives vulnerability.db, import.json, vulnerability-db_v6.*.tar.gz and latest.json;
// the archive's path is printed on stdout (one line).
//
// Input (YAML; JSON is YAML too):
//
//	captured: 2026-12-07T00:00:00Z     # every provider's capture date (default: now); the DB's
//	                                   # build date is always the time of the build (grype's writer)
//	advisories:
//	  - id: CVE-2099-0001              # the vulnerability id
//	    severity: High                 # Critical, High, Medium, Low, Negligible, Unknown
//	    description: text              # optional
//	    # a distro package (vunnel "os" record; grype's dpkg matcher):
//	    namespace: debian:12           # debian:12, debian:13, ubuntu:24.04, ubuntu:26.04, ...
//	    package: openssl               # the source (or binary) package name
//	    fixed: 3.0.17-1~deb12u2        # the fixed version; omitted: no fix yet (not-fixed)
//	    wont_fix: false                # with no fixed version: the distro will not fix it
//	  - id: CVE-2099-0002
//	    severity: Critical
//	    # a CPE (vunnel "nvd" record; grype's CPE matching, e.g. the SBOM's CPython entry):
//	    cpe: cpe:2.3:a:python:python:*:*:*:*:*:*:*:*
//	    from: 3.13.0                   # versionStartIncluding (optional)
//	    fixed: 3.13.16                 # versionEndExcluding: the fixed version
//	    up_to: 3.13.15                 # or versionEndIncluding (no fix known)
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/anchore/go-logger"
	logrusadapter "github.com/anchore/go-logger/adapter/logrus"
	"github.com/anchore/grype/grype"
	grypedb "github.com/anchore/grype/grype/db"
	"github.com/anchore/grype/grype/db/provider"
	v6 "github.com/anchore/grype/grype/db/v6"
	v6build "github.com/anchore/grype/grype/db/v6/build"
)

// The schemas of vunnel's records and workspace state as grype's processors select them
// (processors/*.go: the "/os/" or "/nvd/" path segment and major version 1).
const (
	osSchema    = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/os/schema-1.1.0.json"
	nvdSchema   = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/nvd/schema-1.0.0.json"
	stateSchema = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/provider-workspace-state/schema-1.0.3.json"
	processor   = "orchestrator-vulndb (vunnel workspace format)"
)

type Input struct {
	Captured   string     `yaml:"captured"`
	Advisories []Advisory `yaml:"advisories"`
}

type Advisory struct {
	ID          string `yaml:"id"`
	Severity    string `yaml:"severity"`
	Description string `yaml:"description"`
	Namespace   string `yaml:"namespace"`
	Package     string `yaml:"package"`
	Fixed       string `yaml:"fixed"`
	WontFix     bool   `yaml:"wont_fix"`
	CPE         string `yaml:"cpe"`
	From        string `yaml:"from"`
	UpTo        string `yaml:"up_to"`
}

var severities = map[string]string{
	"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
	"negligible": "Negligible", "unknown": "Unknown",
}

// A CVSS 3.1 vector per severity for the nvd records (grype derives an NVD record's severity
// from its CVSS vector): scores 9.8, 7.5, 5.4 and 3.1.
var cvssBySeverity = map[string]struct {
	vector string
	score  float64
}{
	"Critical": {"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
	"High":     {"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5},
	"Medium":   {"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N", 5.4},
	"Low":      {"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1},
}

func main() {
	in := flag.String("in", "", "advisories (YAML or JSON)")
	out := flag.String("out", "", "output directory (created; must be empty or absent)")
	verbose := flag.Bool("v", false, "grype's build log on stderr (debug level)")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: vulndb -in advisories.yaml -out DIR")
		os.Exit(2)
	}
	if *verbose {
		l, err := logrusadapter.New(logrusadapter.Config{EnableConsole: true, Level: logger.DebugLevel})
		if err != nil {
			fmt.Fprintf(os.Stderr, "vulndb: %v\n", err)
			os.Exit(1)
		}
		grype.SetLogger(l)
	}
	archive, err := run(*in, *out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vulndb: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(archive)
}

func run(inPath, outDir string) (string, error) {
	input, captured, err := readInput(inPath)
	if err != nil {
		return "", err
	}
	if entries, err := os.ReadDir(outDir); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("%s: not empty", outDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "vulndb-workspace-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	states, err := writeWorkspaces(work, input.Advisories, captured)
	if err != nil {
		return "", err
	}
	cfg := grypedb.BuildConfig{
		SchemaVersion:       v6.ModelVersion,
		Directory:           outDir,
		States:              states,
		Timestamp:           captured,
		IncludeCPEParts:     []string{"a", "h", "o"},
		InferNVDFixVersions: true,
		Hydrate:             true,
		BatchSize:           100,
		SQLiteCacheSizeKiB:  16 * 1024,
	}
	if err := grypedb.Build(cfg); err != nil {
		return "", fmt.Errorf("grype db build: %w", err)
	}
	if err := v6build.CreateArchive(outDir, "tar.gz", nil); err != nil {
		return "", fmt.Errorf("grype db package: %w", err)
	}
	matches, err := filepath.Glob(filepath.Join(outDir, "vulnerability-db_v*.tar.gz"))
	if err != nil || len(matches) != 1 {
		return "", fmt.Errorf("%s: expected one archive, found %v", outDir, matches)
	}
	return matches[0], nil
}

func readInput(path string) (*Input, time.Time, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var input Input
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&input); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	captured := time.Now().UTC().Truncate(time.Second)
	if input.Captured != "" {
		captured, err = time.Parse(time.RFC3339, input.Captured)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: captured: %w", path, err)
		}
	}
	if len(input.Advisories) == 0 {
		return nil, time.Time{}, fmt.Errorf("%s: advisories: none given", path)
	}
	var problems []string
	for i := range input.Advisories {
		a := &input.Advisories[i]
		where := fmt.Sprintf("advisories[%d] (%s)", i, a.ID)
		sev, ok := severities[strings.ToLower(a.Severity)]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: severity %q is not one of Critical, High, Medium, Low, Negligible, Unknown", where, a.Severity))
		}
		a.Severity = sev
		switch {
		case a.ID == "":
			problems = append(problems, where+": id is missing")
		case a.CPE != "" && a.Namespace != "":
			problems = append(problems, where+": give either cpe or namespace+package, not both")
		case a.CPE != "":
			if !strings.HasPrefix(a.CPE, "cpe:2.3:") {
				problems = append(problems, where+": cpe must be a CPE 2.3 string (cpe:2.3:a:vendor:product:*:...)")
			}
			if (a.Fixed == "") == (a.UpTo == "") {
				problems = append(problems, where+": a cpe advisory needs exactly one of fixed (versionEndExcluding) or up_to (versionEndIncluding)")
			}
			if _, ok := cvssBySeverity[a.Severity]; !ok && sev != "" {
				problems = append(problems, where+": a cpe advisory's severity must be Critical, High, Medium or Low (NVD scores it by CVSS)")
			}
		case a.Namespace != "":
			if a.Package == "" {
				problems = append(problems, where+": package is missing")
			}
			if !strings.Contains(a.Namespace, ":") {
				problems = append(problems, where+": namespace must be DISTRO:VERSION, e.g. debian:12 or ubuntu:24.04")
			}
			if a.From != "" || a.UpTo != "" {
				problems = append(problems, where+": from/up_to are for cpe advisories")
			}
		default:
			problems = append(problems, where+": give cpe, or namespace and package")
		}
	}
	if len(problems) > 0 {
		return nil, time.Time{}, fmt.Errorf("%s:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return &input, captured.UTC(), nil
}

// vunnel's "os" record (schema/vulnerability/os): what grype's os processor reads.
type osFixedIn struct {
	Name           string `json:"Name"`
	NamespaceName  string `json:"NamespaceName"`
	VendorAdvisory struct {
		AdvisorySummary []any `json:"AdvisorySummary"`
		NoAdvisory      bool  `json:"NoAdvisory"`
	} `json:"VendorAdvisory"`
	Version       string `json:"Version"`
	VersionFormat string `json:"VersionFormat"`
}

type osRecord struct {
	Vulnerability struct {
		CVSS          []any       `json:"CVSS"`
		Description   string      `json:"Description"`
		FixedIn       []osFixedIn `json:"FixedIn"`
		Link          string      `json:"Link"`
		Metadata      struct{}    `json:"Metadata"`
		Name          string      `json:"Name"`
		NamespaceName string      `json:"NamespaceName"`
		Severity      string      `json:"Severity"`
	} `json:"Vulnerability"`
}

// vunnel's "nvd" record (NVD API 2.0 CVE item): what grype's nvd processor reads.
type cpeMatch struct {
	Criteria              string  `json:"criteria"`
	MatchCriteriaID       string  `json:"matchCriteriaId"`
	VersionStartIncluding *string `json:"versionStartIncluding,omitempty"`
	VersionEndExcluding   *string `json:"versionEndExcluding,omitempty"`
	VersionEndIncluding   *string `json:"versionEndIncluding,omitempty"`
	Vulnerable            bool    `json:"vulnerable"`
}

type nvdRecord struct {
	Cve struct {
		ID             string `json:"id"`
		Published      string `json:"published"`
		LastModified   string `json:"lastModified"`
		VulnStatus     string `json:"vulnStatus"`
		Descriptions   []any  `json:"descriptions"`
		Configurations []struct {
			Nodes []struct {
				Operator string     `json:"operator"`
				Negate   bool       `json:"negate"`
				CpeMatch []cpeMatch `json:"cpeMatch"`
			} `json:"nodes"`
		} `json:"configurations"`
		Metrics struct {
			CvssMetricV31 []any `json:"cvssMetricV31"`
		} `json:"metrics"`
		References []any `json:"references"`
	} `json:"cve"`
}

type envelope struct {
	Schema     string `json:"schema"`
	Identifier string `json:"identifier"`
	Item       any    `json:"item"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeWorkspaces writes one vunnel workspace per provider (the distro name of os records,
// "nvd" for cpe records) with grype's WorkspaceWriter and reads each back as grype's build does.
func writeWorkspaces(root string, advisories []Advisory, captured time.Time) (provider.States, error) {
	results := map[string]map[string]envelope{} // provider -> file -> record
	add := func(prov, file string, e envelope) error {
		if results[prov] == nil {
			results[prov] = map[string]envelope{}
		}
		if _, dup := results[prov][file]; dup {
			return fmt.Errorf("%s: two advisories with the same id and namespace (%s)", prov, file)
		}
		results[prov][file] = e
		return nil
	}
	stamp := captured.Format("2006-01-02T15:04:05.000")
	for _, a := range advisories {
		if a.CPE != "" {
			var r nvdRecord
			r.Cve.ID = a.ID
			r.Cve.Published, r.Cve.LastModified, r.Cve.VulnStatus = stamp, stamp, "Analyzed"
			r.Cve.Descriptions = []any{map[string]string{"lang": "en", "value": a.Description}}
			r.Cve.References = []any{}
			r.Cve.Configurations = make([]struct {
				Nodes []struct {
					Operator string     `json:"operator"`
					Negate   bool       `json:"negate"`
					CpeMatch []cpeMatch `json:"cpeMatch"`
				} `json:"nodes"`
			}, 1)
			r.Cve.Configurations[0].Nodes = append(r.Cve.Configurations[0].Nodes, struct {
				Operator string     `json:"operator"`
				Negate   bool       `json:"negate"`
				CpeMatch []cpeMatch `json:"cpeMatch"`
			}{Operator: "OR", CpeMatch: []cpeMatch{{
				Criteria: a.CPE, MatchCriteriaID: strings.ToUpper(a.ID), Vulnerable: true,
				VersionStartIncluding: strPtr(a.From), VersionEndExcluding: strPtr(a.Fixed),
				VersionEndIncluding: strPtr(a.UpTo),
			}}})
			c := cvssBySeverity[a.Severity]
			r.Cve.Metrics.CvssMetricV31 = []any{map[string]any{
				"source": "nvd@nist.gov", "type": "Primary",
				"cvssData": map[string]any{"version": "3.1", "vectorString": c.vector,
					"baseScore": c.score, "baseSeverity": strings.ToUpper(a.Severity)},
			}}
			if err := add("nvd", a.ID+".json", envelope{nvdSchema, strings.ToLower(a.ID), r}); err != nil {
				return nil, err
			}
			continue
		}
		distro := strings.SplitN(a.Namespace, ":", 2)[0]
		var r osRecord
		v := &r.Vulnerability
		v.Name, v.NamespaceName, v.Severity, v.Description = a.ID, a.Namespace, a.Severity, a.Description
		v.CVSS = []any{}
		v.Link = "https://security-tracker.example/" + a.ID
		fix := osFixedIn{Name: a.Package, NamespaceName: a.Namespace, Version: a.Fixed, VersionFormat: "dpkg"}
		fix.VendorAdvisory.AdvisorySummary = []any{}
		fix.VendorAdvisory.NoAdvisory = a.WontFix && a.Fixed == ""
		v.FixedIn = []osFixedIn{fix}
		if distro != "debian" && distro != "ubuntu" {
			return nil, fmt.Errorf("%s: namespace %q: only debian and ubuntu (dpkg) namespaces are supported", a.ID, a.Namespace)
		}
		// one record per (namespace, id): vunnel's debian@12/CVE-... layout
		file := filepath.Join(strings.ReplaceAll(a.Namespace, ":", "@"), a.ID+"-"+a.Package+".json")
		if err := add(distro, file, envelope{osSchema, strings.ToLower(a.Namespace + "/" + a.ID), r}); err != nil {
			return nil, err
		}
	}

	provs := make([]string, 0, len(results))
	for p := range results {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	var states provider.States
	for _, p := range provs {
		w := provider.NewWorkspaceWriter(root, p)
		files := make([]string, 0, len(results[p]))
		for f := range results[p] {
			files = append(files, f)
		}
		sort.Strings(files)
		var listed []provider.File
		for _, f := range files {
			body, err := json.Marshal(results[p][f])
			if err != nil {
				return nil, err
			}
			entry, err := w.WriteResult(f, body)
			if err != nil {
				return nil, err
			}
			listed = append(listed, *entry)
		}
		if err := w.WriteListing(listed); err != nil {
			return nil, err
		}
		listing, err := provider.NewFile(w.ListingPath())
		if err != nil {
			return nil, err
		}
		listing.Path = "results/listing.xxh64"
		version := 1
		if p == "nvd" {
			version = 2
		}
		if err := w.WriteState(provider.State{
			Provider: p, Version: version, DistributionVersion: 1, Processor: processor,
			Schema: provider.Schema{Version: "1.0.3", URL: stateSchema},
			URLs:   []string{"https://example.invalid/" + p}, Timestamp: captured,
			Listing: listing, Store: "flat-file",
		}); err != nil {
			return nil, err
		}
		state, err := provider.ReadState(filepath.Join(w.Path(), "metadata.json"))
		if err != nil {
			return nil, fmt.Errorf("%s: reading back its workspace: %w", p, err)
		}
		states = append(states, *state)
	}
	if len(states) == 0 {
		return nil, errors.New("no advisories")
	}
	return states, nil
}
