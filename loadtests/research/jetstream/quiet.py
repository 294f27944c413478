import time, sys
def rd():
    v=list(map(int, open('/proc/stat').readline().split()[1:])); return sum(v)-v[3]-v[4], sum(v)
t0=time.time()
while time.time()-t0 < float(sys.argv[1] if len(sys.argv)>1 else 120):
    a=rd(); time.sleep(1.5); b=rd()
    busy=(b[0]-a[0])/(b[1]-a[1])*200
    if busy < 8: print(f"quiet ({busy:.0f}%) after {time.time()-t0:.0f}s", file=sys.stderr); sys.exit(0)
print(f"NOT quiet ({busy:.0f}%)", file=sys.stderr)
