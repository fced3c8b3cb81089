"""transport: reaching a device — the interface (`base`), this machine (`local`), SSH boards
(`ssh`, `board_stage`, `lines`), the agent's JSON-lines client (`agent_client`), the inventory
of devices (`inventory`), resolving a device name to a transport (`devices`), the `Board`
(device + profile + effective budget, `board`) and the agent's zipapp (`agent_bundle`).

May import: `edgekit.core`, paramiko, the standard library. Never judge, store, compress or cli.
"""
