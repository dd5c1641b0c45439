# Every package of the ftbridge external tree.
include $(sort $(wildcard $(BR2_EXTERNAL_FTBRIDGE_PATH)/package/*/*.mk))
