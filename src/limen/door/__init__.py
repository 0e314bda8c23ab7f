"""door: the lock actuator (states like Home Assistant's LockEntity), GPIO and simulated."""

from limen.door.actuator import LockActuator, LockState, derive_state
from limen.door.simulated import SimulatedLock

__all__ = ["LockActuator", "LockState", "SimulatedLock", "derive_state"]
