// Package console is the logic of ftconsole, the serial-console recovery
// tool: a numbered menu for a dumb 80x24 terminal (no colours, no cursor
// addressing, line input in the terminal's canonical mode) that shows the
// box's status and lets someone standing at it set the management address,
// reset the admin password, factory-reset the configuration, boot the other
// firmware slot, reboot, or get a root shell behind the root password.
//
// The menu (Menu) talks to the box only through the Actions interface, so
// tests drive it over a pty with a fake; System is the real implementation
// on the appliance (systemd, systemd-networkd, the data partition, the boot
// loader entries of firmware/update). Firstboot lays out the data partition
// and writes defaults; it also runs after a factory reset.
package console
