# libullme build entry points. `make` builds the release library and CLI into build/;
# `make test` runs every test (Swift, Python, C, Go); `make install` installs header, library, pkg-config.
PREFIX ?= /usr/local
SWIFT ?= swift
BUILD := build
REL := .build/release

.PHONY: all lib models fixtures test test-swift test-python test-c test-go install clean

all: lib

lib:
	$(SWIFT) build -c release --product ullme
	$(SWIFT) build -c release --product ullme-cli
	mkdir -p $(BUILD)/lib $(BUILD)/bin $(BUILD)/include
	cp $(REL)/libullme.so $(BUILD)/lib/libullme.so
	cp $(REL)/ullme-cli $(BUILD)/bin/ullme
	cp include/ullme.h $(BUILD)/include/ullme.h

models:
	scripts/fetch_models.sh --gemma3

fixtures: models
	scripts/make_generated_fixtures.sh

test: lib fixtures test-swift test-python test-c test-go

test-swift:
	$(SWIFT) test

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/lib/libullme.so $(DESTDIR)$(PREFIX)/lib/libullme.so
	install -m 644 include/ullme.h $(DESTDIR)$(PREFIX)/include/ullme.h
	install -m 755 $(BUILD)/bin/ullme $(DESTDIR)$(PREFIX)/bin/ullme
	sed 's|@PREFIX@|$(PREFIX)|g' bindings/c/ullme.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ullme.pc

clean:
	rm -rf .build $(BUILD)
