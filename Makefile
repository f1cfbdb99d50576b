# The two commands: `make run` (set up and serve) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
DEBIAN_RUN := python3 python3-venv python3-pip redis-server
DEBIAN_TOOLS := partclone udpcast wimtools ntfs-3g e2fsprogs xfsprogs dosfstools btrfs-progs \
	fdisk gdisk parted zstd lz4 pigz mtools util-linux iproute2 kmod libhivex-bin
DEBIAN_TEST := chromium postgresql-client qemu-system-x86 ovmf debootstrap extlinux \
	syslinux-common grub-pc-bin grub-efi-amd64-bin dnsmasq-base ipxe curl lvm2

.PHONY: run test test-boot deps test-deps lint clean boot-files

run: deps $(VENV)/.installed
	$(VENV)/bin/castor db upgrade
	$(VENV)/bin/castor run

test: test-deps $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The full boot matrix in VMs (make test runs a slice of it; see README).
test-boot: test-deps $(VENV)/.test-installed
	$(VENV)/bin/pytest -q -p no:cacheprovider -m boot_full tests/boot tests/netboot tests/vm tests/multicast $(PYTEST_ARGS)

# Install the Debian packages Castor needs when any is missing (root on Debian).
deps:
	@missing=""; for p in $(DEBIAN_RUN) $(DEBIAN_TOOLS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

test-deps: deps
	@missing=""; for p in $(DEBIAN_TEST); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The imaging environment endpoints network-boot into (debootstrap of Debian bookworm; root).
BOOT_DEBIAN := debootstrap zstd ipxe dnsmasq-base
boot-files: $(VENV)/.installed
	@missing=""; for p in $(BOOT_DEBIAN); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	$(VENV)/bin/castor boot build $(BOOT_ARGS)

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) instance/castor.db
