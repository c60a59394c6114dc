"""The Terminus client: one API over every transport, sync and asyncio."""
