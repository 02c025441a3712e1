# facteur - top-level Makefile.  Meson + ninja do the building; this file
# gives the two commands of the README and a few conveniences.
#
#   make          build (starts nothing)           -> build/facteur
#   make run      install missing packages, build, start the demo
#   make test     install missing packages, build (normal, ASan+UBSan,
#                 fuzz), run every test
#   make install  install facteur and the sendmail/mailq/newaliases links
#   make bench    side-by-side benchmark with Postfix (not part of test)

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
PREFIX     ?= /usr/local

.PHONY: all build deps run test unit pytest fuzz asan install bench clean

all: build

# Meson learns the list of source files at setup time (src/*/meson.build
# globs them): reconfigure a build directory when that list changed.
define reconfigure
	@ls src/*/*.c > $(1)/.srclist.new; \
	if ! cmp -s $(1)/.srclist.new $(1)/.srclist; then \
		meson setup --reconfigure $(1) >/dev/null && mv $(1)/.srclist.new $(1)/.srclist; \
	fi
endef

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	$(call reconfigure,$(BUILD))
	ninja -C $(BUILD)
	ln -sf facteur $(BUILD)/sendmail
	ln -sf facteur $(BUILD)/mailq
	ln -sf facteur $(BUILD)/newaliases

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dcrash_hooks=true

asan: $(BUILD_ASAN)/build.ninja
	$(call reconfigure,$(BUILD_ASAN))
	ninja -C $(BUILD_ASAN)
	ln -sf facteur $(BUILD_ASAN)/sendmail

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

fuzz: $(BUILD_FUZZ)/build.ninja
	$(call reconfigure,$(BUILD_FUZZ))
	ninja -C $(BUILD_FUZZ)

deps:
	./scripts/install-deps.sh

run: deps build
	./scripts/demo.sh

test: deps build asan fuzz
	./scripts/run-tests.sh

install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	meson install -C $(BUILD) --destdir "$(DESTDIR)"
	install -d "$(DESTDIR)$(PREFIX)/sbin" "$(DESTDIR)$(PREFIX)/bin"
	ln -sf ../bin/facteur "$(DESTDIR)$(PREFIX)/sbin/sendmail"
	ln -sf facteur "$(DESTDIR)$(PREFIX)/bin/mailq"
	ln -sf facteur "$(DESTDIR)$(PREFIX)/bin/newaliases"

bench: deps build
	./bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) run
