################################################################################
#
# ftbridge
#
################################################################################

# The package is this repository itself (two directories up); see
# buildroot/README.md. FTBRIDGE_GO_VERSION must equal go.mod's go line: the
# host-go of the Buildroot release used must be at least that.
FTBRIDGE_VERSION = 0.1.0
FTBRIDGE_SITE = $(BR2_EXTERNAL_FTBRIDGE_PATH)/..
FTBRIDGE_SITE_METHOD = local
FTBRIDGE_GOMOD = github.com/ftbridge/ftbridge
FTBRIDGE_GO_VERSION = 1.26.8
FTBRIDGE_BUILD_TARGETS = cmd/ftbridged cmd/ftconsole
FTBRIDGE_INSTALL_BINS = ftbridged ftconsole
FTBRIDGE_LDFLAGS = -s -w
FTBRIDGE_GO_ENV = CGO_ENABLED=0

# Units and helper scripts are shared with the Debian image recipe
# (images/rootfs), so both builds boot the same way; the daemon's own unit
# is deploy/systemd's, with the appliance drop-in.
FTBRIDGE_UNITS = \
	ftbridge-firstboot.service \
	ftbridge-healthy.service \
	ftbridge-bootcheck.service \
	ftconsole@.service

define FTBRIDGE_INSTALL_TARGET_EXTRA
	mkdir -p $(TARGET_DIR)/usr/sbin
	mv -f $(TARGET_DIR)/usr/bin/ftbridged $(TARGET_DIR)/usr/sbin/ftbridged
	$(INSTALL) -D -m 0755 $(@D)/images/rootfs/usr/lib/ftbridge/ftbridged-start \
		$(TARGET_DIR)/usr/lib/ftbridge/ftbridged-start
	$(INSTALL) -D -m 0755 $(@D)/images/rootfs/usr/lib/ftbridge/rauc-backend \
		$(TARGET_DIR)/usr/lib/ftbridge/rauc-backend
	$(INSTALL) -D -m 0644 $(@D)/images/rootfs/etc/fstab $(TARGET_DIR)/etc/fstab
endef
FTBRIDGE_POST_INSTALL_TARGET_HOOKS += FTBRIDGE_INSTALL_TARGET_EXTRA

define FTBRIDGE_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/deploy/systemd/ftbridged.service \
		$(TARGET_DIR)/usr/lib/systemd/system/ftbridged.service
	$(INSTALL) -D -m 0644 $(@D)/images/rootfs/etc/systemd/system/ftbridged.service.d/10-appliance.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/ftbridged.service.d/10-appliance.conf
	$(foreach u,$(FTBRIDGE_UNITS),\
		$(INSTALL) -D -m 0644 $(@D)/images/rootfs/etc/systemd/system/$(u) \
			$(TARGET_DIR)/usr/lib/systemd/system/$(u)$(sep))
endef

$(eval $(golang-package))
