# Portcullis: two commands matter.
#   make run    install what is missing, build, start the appliance on a local data directory
#   make test   install what the tests need, build, run every test
SHELL := /bin/bash
SWIFT ?= swift
FIPS_PREFIX ?= $(CURDIR)/.build-fips/prefix
FIPS_WORK ?= $(CURDIR)/.build-fips/work
RUN_DIR ?= $(CURDIR)/.run
BIN := $(CURDIR)/.build/debug
# The login the quick start's session uses: yours; as root, a demo account (the example role,
# like any sound one, never allows the login root: privileged work is sudo after logging in as
# yourself, AC-6(2)). $USER can be unset (a container, su): the account name comes from id.
# The node's name: the host name (as the daemon names it by default).
RUN_NODE := $(shell hostname | tr A-Z a-z)
RUN_LOGIN := $(shell if [ "$$(id -u)" = 0 ]; then echo pcdemo; else id -un; fi)

.PHONY: all deps test-deps fips build test docs run bench bench-ssh bench-node bench-proxy bench-audit bench-report bench-identity bench-bpf bench-tls deb deb-reproducible test-install test-quickstart fuzz clean help
FUZZ_SECONDS ?= 600

all: build

help:
	@echo "make run     build and start the appliance on $(RUN_DIR) (FIPS mode)"
	@echo "make test    run every test (FIPS provider built first)"
	@echo "make docs    regenerate docs/events.md and compliance/controls.md from their catalogs"
	@echo "make bench   sealed storage and AES-GCM against OpenSSL on this machine"
	@echo "make bench-ssh  the SSH engine against Debian's sshd (root)"
	@echo "make bench-node  the node service (launcher, cgroups, recording) against Debian's sshd (root)"
	@echo "make bench-proxy  ssh -J through the proxy to a node against ssh -J through Debian's sshd (root)"
	@echo "make bench-audit  audit store events/s and search latency over 1,000,000 events"
	@echo "make bench-report  pcctl report ac-10 over 1,000,000 events, live and offline, against python3 json.loads"
	@echo "make bench-identity  logins/s (PBKDF2) and certificate signings/s against openssl speed"
	@echo "make bench-bpf  enhanced recording: 20,000 execs in a monitored cgroup, events received and overhead (root)"
	@echo "make bench-tls  the HTTPS API's TLS handshakes/s against openssl s_server, both in the FIPS provider"
	@echo "make deb     build the Debian package into packaging/out/"
	@echo "make deb-reproducible  package the same commit twice and check the bytes are the same"
	@echo "make test-quickstart  make run, then every login step it prints, as printed"
	@echo "make test-install  install the package on a booted Debian 12 container and use it (root; after make deb)"
	@echo "make fuzz    libFuzzer over every SSH parser, API decoder and broker request a peer reaches (FUZZ_SECONDS=$(FUZZ_SECONDS))"

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

# The OpenSSL FIPS provider, built from the distribution's OpenSSL source once and reused.
fips: deps
	@bash packaging/fips/build-fips-provider.sh $(FIPS_PREFIX) $(FIPS_WORK)

build: deps
	$(SWIFT) build

test: test-deps fips
	@scripts/bpf-generate.sh --check
	@scripts/test-services.sh
	$(SWIFT) build --build-tests
	PORTCULLIS_FIPS_PREFIX=$(FIPS_PREFIX) SWIFT='$(SWIFT)' scripts/swift-test.sh --skip-build --disable-swift-testing
	@$(MAKE) --no-print-directory test-quickstart
	@if [ "$$(id -u)" = 0 ]; then \
		$(MAKE) --no-print-directory test-install; \
	else echo "make test: the install test (make test-install) needs root (it installs debootstrap and systemd-container itself): skipped"; fi

# docs/events.md and compliance/controls.md are generated from the event catalog
# (Sources/Audit/EventCatalog.swift) and the control catalog (compliance/controls/*.yaml).
docs:
	$(SWIFT) build --build-tests
	PORTCULLIS_WRITE_DOCS=1 $(SWIFT) test --skip-build --disable-swift-testing --filter EventCatalogTests
	PORTCULLIS_WRITE_DOCS=1 $(SWIFT) test --skip-build --disable-swift-testing --filter ControlCatalogTests/testTheControlsPageIsCurrent

run: fips build
	@mkdir -p $(RUN_DIR) && chmod 700 $(RUN_DIR)
	@if [ ! -f $(RUN_DIR)/portcullis.yaml ]; then \
		$(BIN)/portcullis configure --output $(RUN_DIR)/portcullis.yaml --data-dir $(RUN_DIR)/data \
			--fips-prefix $(FIPS_PREFIX) --kek-file $(RUN_DIR)/kek; fi
	@$(BIN)/portcullis selftest --config $(RUN_DIR)/portcullis.yaml
	@echo
	@echo "Portcullis is starting in FIPS mode with data in $(RUN_DIR)/data (config: $(RUN_DIR)/portcullis.yaml)."
	@echo "  stop it:         Ctrl-C (SIGINT) or SIGTERM: it shuts down cleanly"
	@echo "  log in (in another terminal; the example role allows the user's --logins except root):"
	@if [ "$$(id -u)" = 0 ]; then \
		echo "    0. as root: the example role never allows the login root (privileged work is sudo after logging in"; \
		echo "       as yourself); make a demo login for the session:  id $(RUN_LOGIN) || useradd --create-home --shell /bin/bash $(RUN_LOGIN)"; fi
	@echo "    1. a role and a user:  $(BIN)/pcctl create -f examples/roles/access.yaml -c $(RUN_DIR)/portcullis.yaml"
	@echo "                           $(BIN)/pcctl users add alice --roles access --logins $(RUN_LOGIN) -c $(RUN_DIR)/portcullis.yaml"
	@echo "    2. trust the proxy:    $(BIN)/pcctl auth export --type tls -c $(RUN_DIR)/portcullis.yaml > $(RUN_DIR)/proxy.pem"
	@echo "    3. as alice:           $(BIN)/pcsh setup --proxy localhost:3080 --ca-cert $(RUN_DIR)/proxy.pem --token TOKEN-FROM-STEP-1"
	@echo "                           $(BIN)/pcsh login --proxy localhost:3080 --ca-cert $(RUN_DIR)/proxy.pem --user alice"
	@echo "    4. this appliance's node, named by its host name (as root, sessions as any login through the root broker; else your own only):"
	@echo "       through the proxy:  $(BIN)/pcsh ssh $(RUN_LOGIN)@$(RUN_NODE)"
	@echo "       or straight to it:  ssh -p 3022 -i ~/.pcsh/key -o UserKnownHostsFile=~/.pcsh/known_hosts -o HostKeyAlias=$(RUN_NODE).portcullis $(RUN_LOGIN)@localhost"
	@echo "    5. its recording:      $(BIN)/pcctl audit search --event session.end -c $(RUN_DIR)/portcullis.yaml; then $(BIN)/pcsh play SESSION-ID"
	@echo "    6. any OpenSSH server: put 'pcctl auth export --type openssh' in its TrustedUserCAKeys, then"
	@echo "                           $(BIN)/pcctl nodes add server --addr SERVER:22 -c $(RUN_DIR)/portcullis.yaml; $(BIN)/pcsh ssh $(RUN_LOGIN)@server"
	@echo
	@echo "  the web console: https://localhost:3080/web - alice's password and one-time code; Connect opens a terminal, Recordings plays sessions back"
	@echo "  (the browser warns of the self-signed certificate, which is $(RUN_DIR)/proxy.pem)"
	@echo
	@exec bash scripts/run.sh $(BIN) $(RUN_DIR)

bench: fips
	@bash bench/sealed-storage.sh

# Our SSH engine against Debian's sshd (needs root: it starts sshd on a loopback port).
bench-ssh: fips
	@bash bench/ssh-engine.sh

bench-node: fips
	@bash bench/ssh-node.sh

bench-proxy: fips
	@bash bench/ssh-proxy.sh

bench-audit: fips
	@bash bench/audit.sh

bench-report: fips
	@bash bench/report.sh

bench-bpf:
	@bash bench/bpf.sh

bench-tls: fips
	@bash bench/tls.sh

bench-identity: fips
	@bash bench/identity.sh

deb: fips
	@bash packaging/deb/build-deb.sh

deb-reproducible: fips
	@bash scripts/deb-reproducible.sh

test-install: deb
	@bash scripts/install-test.sh

# make run, then every login step it printed, run as printed.
test-quickstart: build
	@python3 scripts/quickstart-test.py

# libFuzzer + AddressSanitizer over SSH's UntrustedInput.exercise (Fuzz/ is its own package so
# normal builds never link libFuzzer). Findings are written as Fuzz/crash-* and the run fails.
# api-fuzz does the same for the login and administration APIs' decoders (WebAPI.APIInput);
# broker-fuzz for the root broker's frames and requests (LaunchProtocol.BrokerFrame);
# FUZZ_SECONDS is split between them (2:2:1).
fuzz: deps
	cd Fuzz && $(SWIFT) build --build-path .build -Xswiftc -sanitize=fuzzer,address
	@mkdir -p Fuzz/corpus Fuzz/corpus-api Fuzz/corpus-broker
	cd Fuzz && .build/debug/ssh-fuzz -max_total_time=$$(( $(FUZZ_SECONDS) * 2 / 5 )) -max_len=8192 -rss_limit_mb=4096 -artifact_prefix=./ corpus
	cd Fuzz && .build/debug/api-fuzz -max_total_time=$$(( $(FUZZ_SECONDS) * 2 / 5 )) -max_len=65536 -rss_limit_mb=4096 -artifact_prefix=./api- corpus-api
	cd Fuzz && .build/debug/broker-fuzz -max_total_time=$$(( $(FUZZ_SECONDS) / 5 )) -max_len=4100 -rss_limit_mb=4096 -artifact_prefix=./broker- corpus-broker

clean:
	rm -rf .build .run packaging/out
