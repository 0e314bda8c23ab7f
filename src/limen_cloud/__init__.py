"""limen-cloud: the fleet service (owners, their locks, forwarded evidence, alarms, command relay).

It relays owner-signed commands it cannot forge, re-verifies each lock's audit
hash chain and keeps its head, so a lock that later reports less (cut back,
rolled back, deleted) raises an alarm.  See docs/cloud.md.
"""
