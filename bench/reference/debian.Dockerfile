# Debian's own interpreter on the same base: `apt-get install python3` (3.11 on bookworm).
# Debian byte-compiles the stdlib at install time (py3compile), so .pyc files are shipped.
ARG BASE=127.0.0.1:5000/debian:bookworm-slim
FROM ${BASE}
RUN set -eux; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3; \
	rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log; \
	python3 --version
CMD ["python3"]
