// Answers questions with Renovate's own code (the npm package whose dist/ is argv[2]).
// One JSON request per stdin line; one answer per line on stdout, prefixed "@@ " (anything
// else on stdout is Renovate's logging and is ignored by tests/renovate/renovate.py).
//
//   {"op": "versioning", "versioning": "docker" | "regex:...", "pairs": [[current, candidate]]}
//       -> [{"valid": [bool, bool], "compatible": bool, "greater": bool}]
//   {"op": "rules", "config": {...}, "dep": {...}}     -> the dep's config after packageRules
//   {"op": "lookup", "config": {...}, "dep": {...}, "tags": {tag: digest}}
//       -> Renovate's lookup result, the docker registry replaced by ``tags``
//   {"op": "extract", "content": "<Dockerfile>"}      -> the dockerfile manager's deps
'use strict';

const readline = require('node:readline');

const dist = process.argv[2];
const { getConfig } = require(`${dist}/config/defaults`);
const { mergeChildConfig } = require(`${dist}/config/utils`);
const { applyPackageRules } = require(`${dist}/util/package-rules`);
const { lookupUpdates } = require(`${dist}/workers/repository/process/lookup`);
const { extractPackageFile } = require(`${dist}/modules/manager/dockerfile/extract`);
const { DockerDatasource } = require(`${dist}/modules/datasource/docker`);
const versioning = require(`${dist}/modules/versioning`);
const memCache = require(`${dist}/util/cache/memory`);

// The registry is this process's table: no network. Only the two calls lookup makes.
let registry = {};
DockerDatasource.prototype.getReleases = async function getReleases() {
  return { releases: Object.keys(registry).map((version) => ({ version })) };
};
DockerDatasource.prototype.getDigest = async function getDigest(_config, tag) {
  return registry[tag] ?? null;
};

async function depConfig(config, dep) {
  const merged = mergeChildConfig(mergeChildConfig(getConfig(), config), {
    datasource: 'docker',
    manager: 'dockerfile',
    packageName: dep.depName,
    ...dep,
  });
  return applyPackageRules(merged);
}

const ops = {
  versioning({ versioning: id, pairs }) {
    const api = versioning.get(id);
    return pairs.map(([current, candidate]) => ({
      valid: [api.isValid(current), api.isValid(candidate)],
      compatible: api.isCompatible(candidate, current),
      greater: api.isValid(current) && api.isValid(candidate) && api.isGreaterThan(candidate, current),
    }));
  },
  async rules({ config, dep }) {
    const c = await depConfig(config, dep);
    const keys = ['versioning', 'groupName', 'schedule', 'pinDigests', 'separateMultipleMinor'];
    return Object.fromEntries(keys.map((k) => [k, c[k] ?? null]));
  },
  async lookup({ config, dep, tags }) {
    registry = tags;
    memCache.init();
    const result = await lookupUpdates(await depConfig(config, dep));
    return result.unwrap().val;
  },
  extract({ content }) {
    return extractPackageFile(content, 'Dockerfile', {})?.deps ?? [];
  },
};

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  let answer;
  try {
    const request = JSON.parse(line);
    answer = { ok: await ops[request.op](request) };
  } catch (err) {
    answer = { error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(`@@ ${JSON.stringify(answer)}\n`);
});
