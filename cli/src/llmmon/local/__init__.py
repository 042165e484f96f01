"""The local stack: the same topology as the Pulumi program, on moto in server mode."""
