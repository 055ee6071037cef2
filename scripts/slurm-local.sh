#!/bin/bash
# Starts a single-node SLURM cluster on this machine for the tests: munge, MariaDB and
# slurmdbd (so that sacct works), slurmctld and slurmd, with fake GPUs as generic
# resources. Idempotent: daemons already running are left alone. Needs root and the
# Debian packages slurm-wlm, slurmdbd, munge and mariadb-server.
#   GPUS=4 scripts/slurm-local.sh
set -euo pipefail
GPUS=${GPUS:-4}
NODE=$(hostname -s)
MEMORY_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
LOG=/var/log/slurm
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" /run/slurm /run/autoresearch-gpus

# munge: authentication between the daemons and the commands.
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  head -c 1024 /dev/urandom > /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

# SLURM drops GPUs without device files; character devices like /dev/null stand in.
for i in $(seq 0 $((GPUS - 1))); do
  [ -c /run/autoresearch-gpus/gpu$i ] || mknod /run/autoresearch-gpus/gpu$i c 1 3
done

# Accounting: MariaDB on loopback and slurmdbd.
install -d -o mysql -g mysql /run/mysqld
if ! mysqladmin ping >/dev/null 2>&1; then
  (mysqld_safe --bind-address=127.0.0.1 > "$LOG/mysqld.out" 2>&1 &)
  for _ in $(seq 1 60); do mysqladmin ping >/dev/null 2>&1 && break; sleep 1; done
fi
mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'autoresearch-test';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=autoresearch-test
StorageLoc=slurm_acct_db
CONF
chmod 0600 /etc/slurm/slurmdbd.conf

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=autoresearch
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
ReturnToService=2
MinJobAge=600
KillWait=2
SchedulerParameters=sched_interval=1
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEMORY_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=$NODE Name=gpu File=/run/autoresearch-gpus/gpu[0-$((GPUS - 1))]
CONF

pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 1 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -n -P list cluster format=cluster | grep -qx autoresearch || sacctmgr -i add cluster autoresearch >/dev/null
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 60); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
  case "$state" in idle*|mix*|alloc*) break ;; down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;; esac
  sleep 1
done
sinfo -h -o "%P %T %G"
