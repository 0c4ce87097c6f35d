# Build qlinear and install it as a system library, or pack a release archive.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   # release build, then install under PREFIX
#   make uninstall [PREFIX=...] [DESTDIR=]        # remove exactly what install put there
#   make dist                                     # target/qlinear-VERSION-ARCH-linux.tar.gz
#
# A Makefile rather than cargo-c: it needs nothing but cargo, sed and install, adds no build
# time, and every line of what it installs is here to read. Installed tree:
#
#   lib/libqlinear.so.VERSION, lib/libqlinear.so.MAJOR -> it, lib/libqlinear.so -> .MAJOR
#   lib/libqlinear.a
#   include/qlinear.h, include/qlinear.hpp, include/qlinear_base.hpp
#   lib/pkgconfig/qlinear.pc                        (relocatable: ${pcfiledir})
#   lib/cmake/qlinear/qlinearConfig.cmake, qlinearConfigVersion.cmake   (relocatable)
#   share/qlinear/go/                               (the Go package's sources, for `replace`)
#   share/qlinear/install-manifest.txt              (every file above, for uninstall)
#   share/doc/qlinear/README.md, LICENSE-MIT, LICENSE-APACHE

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
CARGO_TARGET_DIR ?= target

VERSION := $(shell sed -n 's/^version = "\([^"]*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
ARCH := $(shell uname -m)
DIST := qlinear-$(VERSION)-$(ARCH)-linux
BUILT := $(CARGO_TARGET_DIR)/release
ROOT := $(DESTDIR)$(PREFIX)

# What a static link of libqlinear.a needs: the Rust standard library's system libraries
# (`rustc --print native-static-libs` for x86_64/aarch64-unknown-linux-gnu says
# `-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`). -lgcc_s is left to the compiler driver,
# which adds the unwinder itself (libgcc_s, or libgcc_eh with -static, where no libgcc_s
# exists).
STATIC_LIBS := -lutil -lrt -lpthread -lm -ldl -lc
empty :=
space := $(empty) $(empty)
STATIC_LIBS_CMAKE := $(subst $(space),;,$(patsubst -l%,%,$(filter-out -lpthread -lc,$(STATIC_LIBS))))

# The Go package's sources (every .go file but the tests).
GO_SOURCES := $(sort $(filter-out %_test.go,$(wildcard bindings/go/*.go)))

FILES := lib/libqlinear.so.$(VERSION) lib/libqlinear.so.$(MAJOR) lib/libqlinear.so \
	lib/libqlinear.a include/qlinear.h include/qlinear.hpp include/qlinear_base.hpp lib/pkgconfig/qlinear.pc \
	lib/cmake/qlinear/qlinearConfig.cmake lib/cmake/qlinear/qlinearConfigVersion.cmake \
	share/doc/qlinear/README.md share/doc/qlinear/LICENSE-MIT \
	share/doc/qlinear/LICENSE-APACHE share/qlinear/go/go.mod \
	$(patsubst bindings/go/%,share/qlinear/go/%,$(GO_SOURCES)) \
	share/qlinear/install-manifest.txt
DIRS := share/qlinear/go share/qlinear share/doc/qlinear share/doc lib/cmake/qlinear lib/cmake \
	lib/pkgconfig include lib share

SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' \
	-e 's|@STATIC_LIBS@|$(STATIC_LIBS)|g' -e 's|@STATIC_LIBS_CMAKE@|$(STATIC_LIBS_CMAKE)|g'

.PHONY: build install uninstall dist

build:
	$(CARGO) build --release --lib

install: build
	install -d $(ROOT)/lib/pkgconfig $(ROOT)/lib/cmake/qlinear $(ROOT)/include \
		$(ROOT)/share/qlinear/go $(ROOT)/share/doc/qlinear
	install -m 755 $(BUILT)/libqlinear.so $(ROOT)/lib/libqlinear.so.$(VERSION)
	strip --strip-debug $(ROOT)/lib/libqlinear.so.$(VERSION)
	ln -sf libqlinear.so.$(VERSION) $(ROOT)/lib/libqlinear.so.$(MAJOR)
	ln -sf libqlinear.so.$(MAJOR) $(ROOT)/lib/libqlinear.so
	install -m 644 $(BUILT)/libqlinear.a $(ROOT)/lib/libqlinear.a
	strip --strip-debug $(ROOT)/lib/libqlinear.a
	install -m 644 include/qlinear.h bindings/cpp/qlinear.hpp bindings/cpp/qlinear_base.hpp $(ROOT)/include/
	$(SUBST) bindings/pkgconfig/qlinear.pc.in > $(ROOT)/lib/pkgconfig/qlinear.pc
	$(SUBST) bindings/cmake/qlinearConfig.cmake.in > $(ROOT)/lib/cmake/qlinear/qlinearConfig.cmake
	$(SUBST) bindings/cmake/qlinearConfigVersion.cmake.in \
		> $(ROOT)/lib/cmake/qlinear/qlinearConfigVersion.cmake
	install -m 644 README.md LICENSE-MIT LICENSE-APACHE $(ROOT)/share/doc/qlinear/
	install -m 644 bindings/go/go.mod $(GO_SOURCES) $(ROOT)/share/qlinear/go/
	printf '%s\n' $(FILES) > $(ROOT)/share/qlinear/install-manifest.txt
	@echo "installed qlinear $(VERSION) under $(ROOT)"

uninstall:
	cd $(ROOT) && rm -f $(FILES)
	cd $(ROOT) && for d in $(DIRS); do rmdir "$$d" 2>/dev/null || true; done
	@echo "removed qlinear $(VERSION) from $(ROOT)"

# The archive holds the installed tree (plus README and licences) under $(DIST)/; extract it
# anywhere and point PKG_CONFIG_PATH at $(DIST)/lib/pkgconfig or CMAKE_PREFIX_PATH at $(DIST).
dist: build
	rm -rf $(CARGO_TARGET_DIR)/dist
	$(MAKE) --no-print-directory install PREFIX= DESTDIR=$(abspath $(CARGO_TARGET_DIR))/dist/$(DIST)
	cp README.md LICENSE-MIT LICENSE-APACHE $(CARGO_TARGET_DIR)/dist/$(DIST)/
	tar -C $(CARGO_TARGET_DIR)/dist -czf $(CARGO_TARGET_DIR)/$(DIST).tar.gz $(DIST)
	@echo "$(CARGO_TARGET_DIR)/$(DIST).tar.gz"
