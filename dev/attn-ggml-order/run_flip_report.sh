#!/bin/bash
# prints per model: max and number of positions with deviation > 1e-3
cd /tmp/qexp
QUANTA_SHARED=/work/shared POSDIFF=1 ./build/tests/e2e_tests --gtest_filter='*Golden*' 2>&1 | python3 -c '
import sys,re
cur=None; first={}; cnt={}; tot={}
for line in sys.stdin:
    m=re.match(r"\s+(\S+) case (\d+):(.*)",line)
    if m:
        v=[float(x) for x in m.group(3).split()]
        cnt[m.group(1)]=cnt.get(m.group(1),0)+sum(1 for x in v if x>1e-3); tot[m.group(1)]=tot.get(m.group(1),0)+len(v)
        fb=[next((i for i,x in enumerate(v) if x>1e-3),-1)]
        first.setdefault(m.group(1),[]).append(fb[0])
        continue
    m=re.match(r"\[ (\S+) \] max \|logit - llama.cpp\| = (\S+)",line)
    if m: print("%-22s max %s  bad %3d/%d first %s"%(m.group(1),m.group(2),cnt[m.group(1)],tot[m.group(1)],first[m.group(1)]))
'
